import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { resolveOptions, type ChatOptions, type ResolvedOptions } from "../config.js";
import { Hub } from "../hub.js";
import { createLogger, errorText, silentLogger } from "../log.js";
import { connectionLimits } from "../ops/connection-limit.js";
import { createOps, type Ops } from "../ops/ops.js";
import type { HttpContext } from "./context.js";
import { OpenResponses } from "./open-responses.js";
import { createRequestHandler } from "./router.js";
import { MessageLog } from "../store/message-log.js";
import { TcpGateway } from "../tcp/tcp-gateway.js";

export interface ChatServer {
  readonly hub: Hub;
  readonly options: ResolvedOptions;
  /** The server's own node:http server (used by listen()). */
  readonly server: Server;
  /** The request handler, to mount in an http.Server of your own. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** The TCP line gateway, when options.tcpPort is set; it listens with listen(). */
  readonly tcp: TcpGateway | undefined;
  /** Metrics (ops.metrics.registry.gauge() to add one), the log, shutdown hooks (ops.shutdown.onClose()), the per-address cap. */
  readonly ops: Ops;
  /** The message log, with options.dataDir (durable(), compact(), stats); undefined in memory. */
  readonly store: MessageLog | undefined;
  /** Listens on options.host/port (or the ones given), and the TCP gateway on options.tcpPort; resolves with the addresses. */
  listen(port?: number, host?: string): Promise<{ url: string; host: string; port: number; tcpPort?: number }>;
  /** Stops accepting, answers every held poll, closes connections. */
  close(): Promise<void>;
}

/** How long close() lets answers drain before cutting the connections that remain. */
const CLOSE_GRACE_MS = 3000;

export function createChatServer(options: ChatOptions = {}): ChatServer {
  const resolved = resolveOptions(options);
  // --data-dir: the log is read and replayed here, synchronously, so the hub serves restored from its first request.
  const store = resolved.dataDir === undefined ? undefined : MessageLog.open(resolved.dataDir, resolved);
  const hub = new Hub(resolved, { lastId: store?.lastId });
  store?.attach(hub);
  // Under --require-token a name restored from the log that was used without a token would stay open to anyone: it ends now.
  if (resolved.requireToken) for (const client of [...hub.clients()]) if (client.token === undefined) hub.endSession(client, "expired");
  const held = new OpenResponses();
  const streams = new OpenResponses();
  const log =
    resolved.logger ??
    (resolved.logLevel === "silent" ? silentLogger : createLogger({ level: resolved.logLevel, format: resolved.logFormat }));
  const limits = connectionLimits(resolved);
  const tcp =
    resolved.tcpPort === undefined
      ? undefined
      : new TcpGateway(hub, {
          ...resolved,
          admit: (socket) => limits.tcp.admit(socket),
          onUnexpected: (error) => log.error("error", { during: "tcp", error: errorText(error) }),
        });
  const ops = createOps(hub, {
    log,
    connections: limits.http,
    openPolls: () => held.size,
    sseStreams: () => streams.size,
    tcpConnections: () => tcp?.connections ?? 0,
  });
  const ctx: HttpContext = {
    hub,
    options: resolved,
    held,
    streams,
    ops,
    ...(store && {
      durable: () => store.durable(),
      storeFailure: () => store.failure,
      keptHistory: (room: string, before: number, limit: number) => store.history(room, before, limit),
    }),
  };
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
  ops.connections.watch(server);
  // Streams and TCP connections end with a reason, through the same hooks an embedding program can add to.
  ops.shutdown.onClose(() => streams.finishAll());
  if (tcp) ops.shutdown.onClose((reason) => tcp.close(reason));
  let closing: Promise<void> | undefined;
  // For close(): which connections are open, and which of them ever sent a request.
  const connections = new Set<Socket>();
  const asked = new WeakSet<Socket>();
  server.on("connection", (socket: Socket) => {
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
  });
  server.on("request", (req: IncomingMessage) => asked.add(req.socket));

  const closeHttp = (): Promise<void> =>
    new Promise<void>((resolve) => {
      // Mounted in someone else's server, the held polls are still ours to answer.
      if (!server.listening) {
        held.finishAll();
        return resolve();
      }
      // Answers from now on say Connection: close, so keep-alive sockets end after them.
      server.prependListener("request", (_req, res: ServerResponse) => res.setHeader("Connection", "close"));
      server.close(() => {
        clearInterval(sweep);
        resolve();
      });
      held.finishAll();
      // Connections whose answers were just written go idle a moment later: close them as they do.
      // closeIdleConnections() passes over a connection that never sent a request (a client's
      // spare, a slowloris): with nothing to answer on it, it is closed too.
      const closeIdle = (): void => {
        server.closeIdleConnections();
        for (const socket of connections) if (!asked.has(socket)) socket.destroy();
      };
      const sweep = setInterval(closeIdle, 25).unref();
      closeIdle();
      setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
    });

  const runCloseHooks = async (): Promise<void> => {
    for (const error of await ops.shutdown.run("server shutting down")) {
      log.error("error", { during: "shutdown", error: errorText(error) });
    }
  };

  return {
    hub,
    options: resolved,
    server,
    handle,
    tcp,
    ops,
    store,
    async listen(port = resolved.port, host = resolved.host) {
      const http = await new Promise<{ url: string; host: string; port: number }>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const address = server.address() as AddressInfo;
          const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
          resolve({ url: `http://${shown}:${address.port}`, host: address.address, port: address.port });
        });
      });
      if (!tcp) {
        log.info("start", { url: http.url });
        return http;
      }
      const tcpAddress = await tcp.listen(resolved.tcpPort!, host);
      log.info("start", { url: http.url, tcpPort: tcpAddress.port });
      return { ...http, tcpPort: tcpAddress.port };
    },
    close() {
      // The shutdown hooks go first: from then on new requests get 503 shutting_down.
      closing ??= Promise.all([runCloseHooks(), closeHttp()])
        .then(() => hub.close())
        .then(() => store?.close())
        .then(() => log.info("stop"))
        .then(() => log.flush());
      return closing;
    },
  };
}
