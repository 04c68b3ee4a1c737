import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolveOptions, type ChatOptions, type ResolvedOptions } from "../config.js";
import { Hub } from "../hub.js";
import type { HttpContext } from "./context.js";
import { HeldPolls } from "./long-poll.js";
import { createRequestHandler } from "./router.js";

export interface ChatServer {
  readonly hub: Hub;
  readonly options: ResolvedOptions;
  /** The server's own node:http server (used by listen()). */
  readonly server: Server;
  /** The request handler, to mount in an http.Server of your own. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Listens on options.host/port (or the ones given); resolves with the URL. */
  listen(port?: number, host?: string): Promise<{ url: string; host: string; port: number }>;
  /** Stops accepting, answers every held poll, closes connections. */
  close(): Promise<void>;
}

/** How long close() lets answers drain before cutting the connections that remain. */
const CLOSE_GRACE_MS = 3000;

export function createChatServer(options: ChatOptions = {}): ChatServer {
  const resolved = resolveOptions(options);
  const hub = new Hub(resolved);
  const held = new HeldPolls();
  const ctx: HttpContext = { hub, options: resolved, held };
  const handle = createRequestHandler(ctx);
  const server = createServer(
    {
      headersTimeout: resolved.headersTimeoutMs,
      requestTimeout: resolved.requestTimeoutMs,
      keepAliveTimeout: resolved.keepAliveTimeoutMs,
      // Check header and request timeouts every second, not every 30: a slowloris is cut near its deadline.
      connectionsCheckingInterval: 1000,
    },
    handle,
  );
  let closing: Promise<void> | undefined;

  return {
    hub,
    options: resolved,
    server,
    handle,
    listen(port = resolved.port, host = resolved.host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const address = server.address() as AddressInfo;
          const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
          resolve({ url: `http://${shown}:${address.port}`, host: address.address, port: address.port });
        });
      });
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        hub.close();
        if (!server.listening) return resolve();
        // Answers from now on say Connection: close, so keep-alive sockets end after them.
        server.prependListener("request", (_req, res: ServerResponse) => res.setHeader("Connection", "close"));
        server.close(() => {
          clearInterval(sweep);
          resolve();
        });
        held.answerAll();
        // Connections whose answers were just written go idle a moment later: close them as they do.
        const sweep = setInterval(() => server.closeIdleConnections(), 25).unref();
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
      });
      return closing;
    },
  };
}
