import { ChatError } from "../errors.js";
import type { Fate } from "./pending-requests.js";

/** The 503s of a replica (replica.ts): the shared store cannot be reached, or did not tell a request's fate in time. */

/** What a refused writer is told to wait, in seconds. */
export const RETRY_AFTER_S = 2;

export function unavailable(): ChatError {
  return new ChatError("store_unavailable", undefined, { retryAfter: RETRY_AFTER_S });
}

/** The 503 that says the request may have taken effect (spec §10): the store did not tell in time. */
export function fateUnknown(): ChatError {
  const message =
    "The shared store did not confirm this request in time: it may have taken effect. A post sent again with the same txn " +
    "is never doubled; whether a join or leave happened shows by polling with the token.";
  return new ChatError("store_unavailable", message, { retryAfter: RETRY_AFTER_S, headers: { "X-Fate": "unknown" } });
}

/** What a request refused with this fate is told (pending-requests.ts). */
export function refusal(fate: Fate): ChatError {
  return fate === "unknown" ? fateUnknown() : unavailable();
}
