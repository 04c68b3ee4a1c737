import type { Session } from "./session.js";
import { ChatError } from "./errors.js";
import type { PostInput } from "./hub-types.js";
import { parseText, type ParsedText } from "./commands/parse-text.js";
import { checkRoom, checkText, nameKey } from "./validate.js";

/**
 * A post, checked and parsed once: what it says, where it goes, and which rooms
 * it joins on the way. Making one changes nothing, so the hub can refuse a post
 * (caps, rate) before it creates a session, joins or publishes anything.
 */
export interface PostPlan {
  parsed: ParsedText;
  /** The room a message or private message is in. */
  room: string;
  /** Rooms joined before the post is dispatched, in order: `room=` (or a new session's room), the room a seed post goes to. */
  joins: string[];
  /** Every room the post would join, `/join R` included: what the caps and the join budget are checked against. */
  allJoins: string[];
}

export interface Sender {
  name: string;
  /** Undefined for a name with no session yet (it is made only once the post is accepted). */
  client: Session | undefined;
  /** A room joined first, which becomes current: the seed's `room=`, and always set for a new session. */
  first: string | undefined;
}

/** Refuses bad text, room, recipient or command argument (4xx), as post() would, without changing anything. */
export function planPost(input: PostInput, sender: Sender, opts: { maxMessage: number; knows: (name: string) => boolean }): PostPlan {
  checkText(input.text, opts.maxMessage);
  const parsed: ParsedText = input.to !== undefined ? { kind: "private", to: input.to, text: input.text } : parseText(input.text);
  const joins = sender.first === undefined ? [] : [sender.first];
  // Where the sender stands once `first` is joined.
  const current = sender.first ?? sender.client!.currentRoom;
  const room = input.room === undefined ? current : checkRoom(input.room);
  switch (parsed.kind) {
    case "private":
      checkText(parsed.text, opts.maxMessage);
      // A new name may write to itself: it exists by the time the message is sent.
      if (!opts.knows(parsed.to) && nameKey(parsed.to) !== nameKey(sender.name)) {
        throw new ChatError("unknown_recipient", `No user named ${parsed.to}.`);
      }
      return { parsed, room, joins, allJoins: joins };
    case "message":
      if (!joins.includes(room) && sender.client?.rooms.has(room) !== true) {
        if (!input.autoJoin) throw new ChatError("not_in_room", `You are not in ${room}: join it first.`);
        joins.push(room);
      }
      return { parsed, room, joins, allJoins: joins };
    case "command":
      return { parsed, room, joins, allJoins: parsed.command === "join" ? [...joins, checkRoom(parsed.argument)] : joins };
  }
}
