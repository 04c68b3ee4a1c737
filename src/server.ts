import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { resolveOptions, type ChatOptions, type ResolvedOptions } from "./config.js";
import { createHttpServer } from "./http/http-server.js";
import { Hub } from "./hub.js";
import { IdentitySource } from "./identity/identity-source.js";
import { createLogger, errorText, silentLogger } from "./log.js";
import { connectionLimits } from "./ops/connection-limit.js";
import { createOps, type Ops } from "./ops/ops.js";
import { MessageLog } from "./store/message-log.js";
import { TcpGateway } from "./tcp/tcp-gateway.js";
import { createCluster, type Cluster } from "./cluster/cluster.js";
import { openSharedLog } from "./cluster/open-shared-log.js";
import { ClusterTcp } from "./cluster/cluster-tcp.js";

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
  /** With options.redis (or sharedLog): this process as a replica of the shared log; listen() catches up first. */
  readonly cluster: Cluster | undefined;
  /** Listens on options.host/port (or the ones given), and the TCP gateway on options.tcpPort; resolves with the addresses. */
  listen(port?: number, host?: string): Promise<{ url: string; host: string; port: number; tcpPort?: number }>;
  /** Stops accepting, answers every held poll, closes connections. */
  close(): Promise<void>;
}

/**
 * The composition root: from the options it picks and wires the parts (the
 * store, the hub, the HTTP side, the TCP gateway, ops) and closes them in order.
 */
export function createChatServer(options: ChatOptions = {}): ChatServer {
  const resolved = resolveOptions(options);
  // --data-dir: the log is read and replayed here, synchronously, so the hub serves restored from its first request.
  const store = resolved.dataDir === undefined ? undefined : MessageLog.open(resolved.dataDir, resolved);
  const sharedLog = openSharedLog(resolved);
  const warn = (line: string): void => void process.stderr.write(`${line}\n`);
  const lost = (reason: string): void => {
    if (resolved.onStoreLost) return resolved.onStoreLost(reason);
    warn(`pollchat: ${reason}; this server closes`);
    void chat.close();
  };
  const cluster = sharedLog === undefined ? undefined : createCluster(resolved, sharedLog, warn, lost);
  const hub = cluster?.hub ?? new Hub(resolved, { lastId: store?.lastId });
  store?.attach(hub);
  // A name taken only with a JWT or the host's login (spec §4): none otherwise, on any transport.
  const identity =
    resolved.jwtSecret === undefined && resolved.authenticate === undefined
      ? undefined
      : new IdentitySource({ jwtSecret: resolved.jwtSecret, authenticate: resolved.authenticate });
  // With a JWT secret or authenticate a name restored from the log that no proof took (a squatter's from before) ends now;
  // under --require-token one used without a token would stay open to anyone: it ends too. (--redis: by the log, cluster.ts.)
  if (identity && !cluster) hub.endUnproven();
  else if (resolved.requireToken && !cluster) {
    for (const client of [...hub.sessions()]) if (client.token === undefined) hub.endSession(client, "expired");
  }
  const log =
    resolved.logger ??
    (resolved.logLevel === "silent" ? silentLogger : createLogger({ level: resolved.logLevel, format: resolved.logFormat }));
  const limits = connectionLimits(resolved);
  const tcp =
    resolved.tcpPort === undefined
      ? undefined
      : new TcpGateway(hub, {
          ...resolved,
          requireToken: resolved.requireToken || identity !== undefined,
          // `/token <jwt>`: the session of the name it proves, as POST /api/join with it would give.
          ...(identity?.acceptsJwt && { vouch: (jwt: string) => identity.fromJwt(jwt) }),
          admit: (socket) => limits.tcp.admit(socket),
          cluster: cluster && new ClusterTcp(cluster.replica, hub, resolved.rate),
          onUnexpected: (error) => log.error("error", { during: "tcp", error: errorText(error) }),
        });
  const ops = createOps(hub, {
    log,
    connections: limits.http,
    // Read at scrape time, once `http` below exists.
    openPolls: () => http.openPolls,
    sseStreams: () => http.sseStreams,
    tcpConnections: () => tcp?.connections ?? 0,
  });
  const http = createHttpServer({
    hub,
    options: resolved,
    ops,
    ...(identity && { identity }),
    ...(store && {
      durable: () => store.durable(),
      storeFailure: () => store.failure,
    }),
    ...(cluster && { cluster: cluster.replica, storeFailure: () => cluster.failure(), pollMark: () => cluster.replica.marks.mark() }),
  });
  cluster?.registerMetrics(ops.metrics.registry);
  // TCP connections end with a reason, through the same hooks an embedding program can add to (after the streams).
  if (tcp) ops.shutdown.onClose((reason) => tcp.close(reason));
  let closing: Promise<void> | undefined;

  const runCloseHooks = async (): Promise<void> => {
    for (const error of await ops.shutdown.run("server shutting down")) {
      log.error("error", { during: "shutdown", error: errorText(error) });
    }
  };

  const chat: ChatServer = {
    hub,
    options: resolved,
    server: http.server,
    handle: http.handle,
    tcp,
    ops,
    store,
    cluster,
    async listen(port = resolved.port, host = resolved.host) {
      // Caught up with the shared log before listening: a process started later serves every session at once.
      await cluster?.start();
      const address = await http.listen(port, host);
      if (!tcp) {
        log.info("start", { url: address.url });
        return address;
      }
      const tcpAddress = await tcp.listen(resolved.tcpPort!, host);
      log.info("start", { url: address.url, tcpPort: tcpAddress.port });
      return { ...address, tcpPort: tcpAddress.port };
    },
    close() {
      // The shutdown hooks go first: from then on new requests get 503 shutting_down.
      closing ??= Promise.all([runCloseHooks(), http.close()])
        .then(() => hub.close())
        .then(() => store?.close())
        .then(() => cluster?.close())
        .then(() => log.info("stop"))
        .then(() => log.flush());
      return closing;
    },
  };
  return chat;
}
