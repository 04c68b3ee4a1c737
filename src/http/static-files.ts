import { readFile, realpath, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import type { ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { ChatError } from "../errors.js";

const CONTENT_TYPES = new Map<string, string>([
  [".html", "text/html; charset=utf-8"],
  [".css", "text/css; charset=utf-8"],
  [".js", "text/javascript; charset=utf-8"],
  [".json", "application/json; charset=utf-8"],
  [".svg", "image/svg+xml"],
  [".png", "image/png"],
  [".ico", "image/x-icon"],
  [".txt", "text/plain; charset=utf-8"],
]);

/**
 * Serves the browser page from publicDir. The decoded path must stay inside
 * it: "..", NUL and backslashes are refused before the file system sees them,
 * and a symlink is followed only to a file that is itself inside publicDir.
 */
export async function serveStatic(publicDir: string, rawPath: string, res: ServerResponse, headOnly: boolean): Promise<void> {
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw new ChatError("bad_encoding");
  }
  if (path.includes("\0") || path.includes("\\") || path.split("/").includes("..")) throw new ChatError("not_found");
  if (path.endsWith("/")) path += "index.html";
  const root = resolve(publicDir);
  const file = resolve(join(root, path));
  if (!file.startsWith(root + sep)) throw new ChatError("not_found");
  const type = CONTENT_TYPES.get(extname(file).toLowerCase());
  if (type === undefined) throw new ChatError("not_found");
  let body: Buffer;
  try {
    // Resolved both sides: publicDir may itself be reached through a link (/tmp on macOS).
    const [realRoot, real] = await Promise.all([realpath(root), realpath(file)]);
    if (!real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) throw new Error("outside publicDir");
    if (!(await stat(real)).isFile()) throw new Error("not a file");
    body = await readFile(real);
  } catch {
    throw new ChatError("not_found");
  }
  sendFile(res, type, body, headOnly);
}

/** The client library (spec §11), built into one module (scripts/bundle-client.js); from src/ and dist/ alike. */
const CLIENT_SCRIPT = fileURLToPath(new URL("../../dist/client.js", import.meta.url));

/** GET /client.js: the same file `pollchat/client` imports. */
export async function serveClientScript(res: ServerResponse, headOnly: boolean): Promise<void> {
  let body: Buffer;
  try {
    body = await readFile(CLIENT_SCRIPT);
  } catch {
    throw new ChatError("not_found", "The client library is not built (npm run build).");
  }
  sendFile(res, CONTENT_TYPES.get(".js")!, body, headOnly);
}

function sendFile(res: ServerResponse, type: string, body: Buffer, headOnly: boolean): void {
  res.writeHead(200, {
    "Content-Type": type,
    "Content-Length": body.length,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
  });
  res.end(headOnly ? undefined : body);
}
