import type { IncomingMessage } from "node:http";
import { ChatError } from "../errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a JSON object body of at most `limit` bytes. An empty body is {}.
 * Oversized bodies are refused as soon as they are known to be too large.
 */
export async function readJsonObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit) throw new ChatError("body_too_large", `A body is at most ${limit} bytes.`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new ChatError("body_too_large", `A body is at most ${limit} bytes.`);
    chunks.push(chunk);
  }
  if (size === 0) return Object.create(null) as Record<string, unknown>;
  if (!isJsonContentType(req.headers["content-type"])) throw new ChatError("unsupported_media_type");
  let text: string;
  try {
    text = utf8.decode(Buffer.concat(chunks, size));
  } catch {
    throw new ChatError("bad_encoding", "The body is not valid UTF-8.");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ChatError("bad_json");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new ChatError("bad_json");
  return value as Record<string, unknown>;
}

/** `application/json`, with parameters or none: what no HTML form can send (spec §4). */
export function isJsonContentType(type: string | undefined): boolean {
  return type !== undefined && /^application\/json\s*(;|$)/i.test(type);
}

/** A field that must be a string when present. */
export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  if (!Object.hasOwn(body, key) || body[key] === undefined || body[key] === null) return undefined;
  const value = body[key];
  if (typeof value !== "string") throw new ChatError("bad_request", `${key} must be a string.`);
  return value;
}

export function requiredString(body: Record<string, unknown>, key: string): string {
  const value = optionalString(body, key);
  if (value === undefined) throw new ChatError("missing_parameter", `${key} is required.`);
  return value;
}
