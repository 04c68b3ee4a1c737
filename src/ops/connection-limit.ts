import type { Server } from "node:http";
import type { Socket } from "node:net";
import { addressKey } from "../address-key.js";

/** Set on a connection past its address's cap: a property, since every request asks (refuses()). */
const OVER = Symbol("pollchat.overCap");
type OverSocket = Socket & { [OVER]?: true };

/**
 * Counts open connections per remote address (addressKey: IPv6 per /64,
 * ::ffff:a.b.c.d as a.b.c.d). A connection past the cap is
 * kept just long enough to answer its first request with 503 (and
 * Connection: close), so the client learns why; one that sends nothing is cut
 * after OVER_CAP_GRACE_MS instead of holding a socket until the headers timeout.
 */
export class ConnectionLimit {
  readonly #max: number;
  readonly #perAddress = new Map<string, number>();
  /** Every open connection and the address key it counts under: what its close gives back. */
  readonly #open = new Map<Socket, string>();
  /** One `close` listener for every connection of this limit (`this` is the socket): no closure per connection. */
  readonly #onClose: (this: Socket) => void;

  /** @param max connections allowed per address; 0 means no cap. */
  constructor(max: number) {
    this.#max = max;
    const limit = this;
    this.#onClose = function (this: Socket) {
      limit.#closed(this);
    };
  }

  get total(): number {
    return this.#open.size;
  }

  /** The connections open now (for a server's close: which to end). */
  sockets(): IterableIterator<Socket> {
    return this.#open.keys();
  }

  /** Connections now open from this address. */
  count(address: string): number {
    return this.#perAddress.get(addressKey(address)) ?? 0;
  }

  /** Starts counting a server's connections. */
  watch(server: Server): void {
    server.on("connection", (socket: Socket) => this.admit(socket));
  }

  /** True when this connection is past its address's cap: answer 503 and close. */
  refuses(socket: Socket): boolean {
    return (socket as OverSocket)[OVER] === true;
  }

  /**
   * Counts a new connection until it closes; false when it is past its
   * address's cap (it is then cut after a short grace unless closed first).
   */
  admit(socket: Socket): boolean {
    const address = addressKey(socket.remoteAddress ?? "");
    const n = (this.#perAddress.get(address) ?? 0) + 1;
    this.#perAddress.set(address, n);
    this.#open.set(socket, address);
    socket.on("close", this.#onClose);
    if (this.#max > 0 && n > this.#max) {
      (socket as OverSocket)[OVER] = true;
      const cut = setTimeout(() => socket.destroy(), OVER_CAP_GRACE_MS).unref();
      socket.once("close", () => clearTimeout(cut));
      return false;
    }
    return true;
  }

  #closed(socket: Socket): void {
    const address = this.#open.get(socket);
    if (address === undefined) return;
    this.#open.delete(socket);
    const left = (this.#perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(address, left);
    else this.#perAddress.delete(address);
  }
}

/** Long enough for a client that sent its request with the connection to get the 503. */
const OVER_CAP_GRACE_MS = 2000;

/** The per-address connection caps of a server: HTTP and TCP, each counted on its own. */
export interface ConnectionLimits {
  readonly http: ConnectionLimit;
  readonly tcp: ConnectionLimit;
}

/**
 * Both caps, made here from the options so the rule between them lives in one
 * place. Behind a reverse proxy (--trust-proxy) every HTTP connection comes from
 * the proxy, which reuses its connections for many clients: a cap per socket
 * address would count the proxy, not a client, and one busy moment would lock
 * everyone out. So there the HTTP cap is off; clients are told apart by
 * X-Forwarded-For for the per-address session cap, and the proxy limits
 * connections per client. The TCP gateway is not behind the HTTP proxy and
 * keeps its cap.
 */
export function connectionLimits(options: { maxConnectionsPerIp: number; trustProxy: boolean }): ConnectionLimits {
  return {
    http: new ConnectionLimit(options.trustProxy ? 0 : options.maxConnectionsPerIp),
    tcp: new ConnectionLimit(options.maxConnectionsPerIp),
  };
}
