import type { RespReply } from "../redis/index.js";
import { START, type LogEntry } from "./shared-log.js";

/** A bulk string (or a number) of a Redis reply, as text. */
export function text(reply: RespReply): string {
  return Buffer.isBuffer(reply) ? reply.toString("utf8") : String(reply);
}

/** [id, [field, value, ...]] → an entry; a record is field `r`. */
export function toEntry(reply: RespReply): LogEntry {
  if (!Array.isArray(reply)) return { id: START, data: "" };
  const id = text(reply[0]!);
  const fields = Array.isArray(reply[1]) ? reply[1] : [];
  let data = "";
  for (let i = 0; i + 1 < fields.length; i += 2) if (text(fields[i]!) === "r") data = text(fields[i + 1]!);
  return { id, data };
}
