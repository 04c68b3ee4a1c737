import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Hub, Identity } from "../hub.js";
import { TcpConnection } from "./tcp-connection.js";
import type { ClusterTcp } from "../cluster/cluster-tcp.js";

export interface TcpGatewayOptions {
  maxMessage: number;
  maxPendingBytes: number;
  maxQueue: number;
  /** Connections must present `/token T` (a session of POST /api/join) before they speak. @default false */
  requireToken?: boolean;
  /** With --jwt-secret: `/token <jwt>` proves a name (identity-source.ts fromJwt; throws 401). @default accepts none */
  vouch?: ((jwt: string) => Identity) | undefined;
  /** A connection that names no one in this long is closed, in ms. @default 60000 */
  nameTimeoutMs?: number;
  /** Told of an error that is not a ChatError (a bug): the connection gets `error internal` and the server goes on. */
  onUnexpected?: (error: unknown) => void;
  /** Counts a new connection; false turns it away (the per-address cap). @default admits all */
  admit?: (socket: Socket) => boolean;
  /** With --redis: names, tokens and lines go through the shared log. */
  cluster?: ClusterTcp | undefined;
}

/** How long connections get to read their goodbye when the gateway closes, in ms. */
const CLOSE_GRACE_MS = 1000;

/**
 * The TCP line gateway (spec §6) for `nc` and `telnet`: it accepts
 * connections (tcp-connection.ts speaks with each) over the same hub.
 */
export class TcpGateway {
  readonly #hub: Hub;
  readonly #options: Required<Omit<TcpGatewayOptions, "vouch" | "cluster">> & Pick<TcpGatewayOptions, "vouch" | "cluster">;
  readonly #server: Server;
  readonly #connections = new Set<TcpConnection>();

  constructor(hub: Hub, options: TcpGatewayOptions) {
    this.#hub = hub;
    this.#options = { requireToken: false, nameTimeoutMs: 60_000, onUnexpected: () => {}, admit: () => true, ...options };
    this.#server = createServer((socket) => this.#connect(socket));
  }

  get connections(): number {
    return this.#connections.size;
  }

  /** The most output any one connection has waiting unread, in bytes (bounded by maxPendingBytes plus one write). */
  largestPendingOutput(): number {
    let largest = 0;
    for (const connection of this.#connections) largest = Math.max(largest, connection.socket.writableLength);
    return largest;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Says goodbye to every connection with a reason (a client that never reads is cut after a second), then stops listening. */
  close(reason = "server shutting down"): Promise<void> {
    return new Promise((resolve) => {
      for (const connection of this.#connections) connection.bye(`* ${reason}\n`, CLOSE_GRACE_MS);
      this.#server.close(() => resolve());
    });
  }

  #connect(socket: Socket): void {
    socket.on("error", () => {}); // a reset by the peer ends like a close
    if (!this.#options.admit(socket)) {
      socket.end("* too many connections from your address\n", () => socket.destroy());
      return;
    }
    const connection = new TcpConnection(this.#hub, socket, this.#options);
    this.#connections.add(connection);
    socket.once("close", () => this.#connections.delete(connection));
  }
}
