import { randomBytes } from "node:crypto";
import type { Session } from "../session.js";
import type { Hub, Identity } from "../hub.js";
import { vouchedSession } from "./cluster-vouched.js";
import { DEFAULT_ROOM } from "../rooms.js";
import type { Replica } from "./replica.js";
import { rateRefusal, type PreCheckContext } from "./pre-checks.js";

/**
 * The TCP gateway's state changes with --redis (spec §10): a TCP session is
 * shared like any other (its name is taken on every process) and ends when its
 * connection closes (an entry) or its process dies (nobody sees it any more:
 * it expires). Lines are appended in the order they came, so they post in that order.
 */
export class ClusterTcp {
  readonly #replica: Replica;
  readonly #checks: PreCheckContext;

  constructor(replica: Replica, hub: Hub, rate: number) {
    this.#replica = replica;
    this.#checks = { hub, replica, rate };
  }

  /** A name of its own for the connection. */
  claim(name: string, address: string): Promise<Session> {
    const token = randomBytes(24).toString("base64url");
    return this.#replica.submit({ t: "join", n: name, r: DEFAULT_ROOM, k: token, a: address, tcp: 1 }, (outcome) => outcome as Session);
  }

  /** `/token <jwt>`: the session of the name the JWT proved here (verified before this: cluster-vouched.ts). */
  vouch(identity: Identity, address: string): Promise<Session> {
    return vouchedSession(this.#checks.hub, this.#replica, identity, address);
  }

  /** A line from the connection, as a post of its session (joining the room it names, as the seed does); one past the rate limit is refused with nothing appended. */
  post(client: Session, text: string): Promise<unknown> {
    // At once, not after an await: lines are appended in the order they came.
    const refusal = rateRefusal(this.#checks, client.ended ? undefined : client);
    if (refusal !== undefined) return Promise.reject(refusal);
    return this.#replica.submit({ t: "post", k: client.token!, x: text, auto: 1 }, () => undefined);
  }

  /** The connection of a claimed name closed: its session ends, on every process (one ended already, by the log or a new epoch, needs no entry). */
  release(client: Session): void {
    if (client.token !== undefined && !client.ended) void this.#replica.submit({ t: "leave", k: client.token }, () => undefined).catch(() => {});
  }

  /** The session a token names, once this process has caught up with the log if it does not know it yet. */
  async byToken(token: string, local: (token: string) => Session | undefined): Promise<Session | undefined> {
    const known = local(token);
    if (known) return known;
    await this.#replica.catchUp();
    const client = local(token);
    if (client === undefined) this.#replica.tokens.unknown(token); // token-marks.ts
    return client;
  }
}
