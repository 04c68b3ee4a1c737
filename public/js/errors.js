// An error of the client library, in words for the page.

import { ClientError } from "../client.js";

export function describeError(error) {
  if (!(error instanceof ClientError) || error.status === 0) return "the server cannot be reached";
  switch (error.code) {
    case "rate_limited":
      return "too many messages, slow down";
    case "not_in_room":
      return "you are not in that room";
    default:
      return error.message;
  }
}
