import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { HttpContext } from "./context.js";
import { OpenResponses } from "./open-responses.js";
import { PollDeadlines } from "./poll-deadlines.js";
import { createRequestHandler } from "./router.js";
import { destroyStalledWriters } from "./write-timeout.js";

/** The HTTP side of a chat server: the node:http server, its request handler, and what closing it needs. */
export interface HttpServer {
  readonly server: Server;
  /** The request handler, to mount in an http.Server of your own. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Long-polls held open now. */
  readonly openPolls: number;
  /** SSE streams open now. */
  readonly sseStreams: number;
  listen(port: number, host: string): Promise<{ url: string; host: string; port: number }>;
  /** Stops accepting, answers every held poll, closes connections. */
  close(): Promise<void>;
}

/** How long close() lets answers drain before cutting the connections that remain. */
const CLOSE_GRACE_MS = 3000;

const ASKED = Symbol("pollchat.asked");
type AskedSocket = Socket & { [ASKED]?: true };

/** Everything the handlers are given, less the open polls and streams, which are HTTP's own. */
export type HttpParts = Omit<HttpContext, "openPolls" | "streams">;

export function createHttpServer(parts: HttpParts): HttpServer {
  const { ops, options } = parts;
  const openPolls = new PollDeadlines();
  const streams = new OpenResponses();
  const handle = createRequestHandler({ ...parts, openPolls, streams });
  // For close(): which connections ever sent a request (ops.connections knows which are open).
  // Marked on the socket by the server's one request listener (a second listener would make every emit copy its list).
  const server = createServer(
    {
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      // Check header and request timeouts every second, not every 30: a slowloris is cut near its deadline.
      connectionsCheckingInterval: 1000,
    },
    (req, res) => {
      (req.socket as AskedSocket)[ASKED] = true;
      handle(req, res);
    },
  );
  ops.connections.watch(server);
  // A client that stops reading an answer loses its connection once the answer stops moving.
  const stalledWriters = destroyStalledWriters(options.writeTimeoutMs, () => ops.connections.sockets());
  // Streams end with a reason, through the same hooks an embedding program can add to.
  ops.shutdown.onClose(() => streams.finishAll());

  return {
    server,
    handle,
    get openPolls() {
      return openPolls.size;
    },
    get sseStreams() {
      return streams.size;
    },
    listen(port, host) {
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
      return new Promise<void>((resolve) => {
        // Mounted in someone else's server, the held polls are still ours to answer.
        if (!server.listening) {
          stalledWriters.stop();
          openPolls.finishAll();
          return resolve();
        }
        // Answers from now on say Connection: close, so keep-alive sockets end after them.
        server.prependListener("request", (_req, res: ServerResponse) => res.setHeader("Connection", "close"));
        server.close(() => {
          clearInterval(sweep);
          stalledWriters.stop();
          resolve();
        });
        openPolls.finishAll();
        // Connections whose answers were just written go idle a moment later: close them as they do.
        // closeIdleConnections() passes over a connection that never sent a request (a client's
        // spare, a slowloris): with nothing to answer on it, it is closed too.
        const closeIdle = (): void => {
          server.closeIdleConnections();
          for (const socket of [...ops.connections.sockets()]) if ((socket as AskedSocket)[ASKED] !== true) socket.destroy();
        };
        const sweep = setInterval(closeIdle, 25).unref();
        closeIdle();
        setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
      });
    },
  };
}
