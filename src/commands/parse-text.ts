import { NAME_CHARS } from "../validate.js";

/** What a line of chat text asks for (spec §2): a message, a private message, or a command. */
export type ParsedText =
  | { kind: "message"; text: string }
  | { kind: "private"; to: string; text: string }
  | { kind: "command"; command: string; argument: string };

const PRIVATE = new RegExp(`^@(${NAME_CHARS}) ([\\s\\S]*)$`);
const COMMAND = /^\/([A-Za-z]+)(?:[ \t]+([\s\S]*))?$/;

export function parseText(text: string): ParsedText {
  const privateMatch = PRIVATE.exec(text);
  if (privateMatch) return { kind: "private", to: privateMatch[1]!, text: privateMatch[2]! };
  const commandMatch = COMMAND.exec(text);
  if (commandMatch) {
    return { kind: "command", command: commandMatch[1]!.toLowerCase(), argument: (commandMatch[2] ?? "").trim() };
  }
  return { kind: "message", text };
}
