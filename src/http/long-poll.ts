import type { ServerResponse } from "node:http";
import type { Client } from "../client.js";
import type { Hub } from "../hub.js";
import type { Envelope } from "../message.js";
import type { OpenResponses } from "./open-responses.js";
import { send } from "./respond.js";

/** How a poll answer's body looks: the seed's text lines, or the JSON of spec §4. */
export type PollFormat = "text" | "json";

export interface PollRequest {
  client: Client;
  /** With a cursor, entries stay queued until a later poll acknowledges them; without, until this answer is written. */
  cursor: number | undefined;
  timeoutMs: number;
  format: PollFormat;
}

/**
 * The long-poll of spec §1 and §5: answered at once when something is queued,
 * else held until the hub wakes this client or the timer ends it (200, empty).
 */
export function longPoll(hub: Hub, held: OpenResponses, res: ServerResponse, poll: PollRequest): void {
  const { client, cursor } = poll;
  if (cursor !== undefined) hub.resume(client, cursor);
  // Answered in this turn: nothing to hold, so no timer, listeners or closures.
  // (attach and detach would only set lastSeen, which the request's touch just did.)
  if (client.queue.length > 0 || poll.timeoutMs === 0 || client.ended) return reply(hub, res, poll);
  hub.attach(client);
  let finished = false;
  // Answer after the current turn's publishes, not at the first: a post that
  // also joins its sender (join notice, then message) reaches this poll whole.
  const wake = (): void => queueMicrotask(answer);

  const release = (): boolean => {
    if (finished) return false;
    finished = true;
    hub.unsubscribe(client, wake);
    clearTimeout(timer);
    held.delete(answer);
    hub.detach(client);
    return true;
  };

  // Runs at most once: it unsubscribes before it writes.
  function answer(): void {
    if (release()) reply(hub, res, poll);
  }

  hub.subscribe(client, wake);
  const timer = setTimeout(answer, poll.timeoutMs);
  held.add(answer);
  // The client went away first: the poll takes nothing with it. (on, not once: release is
  // idempotent and close comes once, so no once-wrapper is kept per held poll.)
  res.on("close", release);
}

/** Writes what the client's queue holds now (perhaps nothing) with the cursor to send next. */
function reply(hub: Hub, res: ServerResponse, { client, cursor, format }: PollRequest): void {
  const entries = client.queue.peek();
  const next = hub.cursorAfter(client, entries);
  const headers = { "X-Cursor": String(next) };
  if (format === "json") send(res, 200, "application/json; charset=utf-8", jsonBody(entries, next), headers);
  else send(res, 200, "text/plain; charset=utf-8", textBody(entries), headers);
  // Without a cursor nothing else will acknowledge these: they leave the queue once written out.
  if (cursor === undefined && entries.length > 0) res.once("finish", () => hub.ack(client, next));
}

function textBody(entries: readonly Envelope[]): string {
  let body = "";
  for (const e of entries) body += e.line;
  return body;
}

function jsonBody(entries: readonly Envelope[], cursor: number): string {
  let body = '{"messages":[';
  for (let i = 0; i < entries.length; i++) body += (i > 0 ? "," : "") + entries[i]!.json;
  return body + '],"cursor":' + cursor + "}";
}
