import type { Session } from "../session.js";
import { ChatError } from "../errors.js";
import type { Hub } from "../hub.js";
import { sameToken } from "../same-token.js";
import type { Replica } from "./replica.js";
import { msOf } from "./shared-log.js";

/*
 * Cheap refusals before a command is appended to the shared log (spec §10).
 * Every entry costs one append and one apply on every process, so anonymous
 * junk (a made-up token, a flood past the rate limit, polls --require-token
 * refuses) is refused here, with nothing appended. Each check only refuses
 * what applying the command would refuse too, judged as one process judges a
 * request when it comes; it never accepts anything: apply still decides what
 * these let through. This replica may be behind the log, so a refusal that
 * could be stale (a token made elsewhere a moment ago, a name's session that
 * ended since) is made only after catching up once (shared: replica.catchUp).
 */

export interface PreCheckContext {
  readonly hub: Hub;
  readonly replica: Replica;
  /** --rate, the same on every process. */
  readonly rate: number;
}

/** The live session a token names, caught up with the log once if it is not known here; else 401. */
export async function sessionOfToken(ctx: PreCheckContext, token: string): Promise<Session> {
  let client = ctx.hub.sessionByToken(token);
  if (client === undefined) {
    await ctx.replica.catchUp();
    client = ctx.hub.sessionByToken(token);
  }
  if (client === undefined) {
    ctx.replica.tokens.unknown(token); // signed past what the log has: it lost its end (token-marks.ts)
    throw new ChatError("unauthorized");
  }
  return client;
}

/**
 * 429 for a post its session has no token left for. The bucket here is as the
 * last entry applied left it: entries not applied yet can only take more. A
 * retry of a post whose txn key is known goes to the log whatever the bucket
 * says (it is answered its id there); a txn key not known here may be one applied
 * elsewhere a moment ago, so it is refused only once caught up (a flood with a
 * fresh key on every post is refused like every other). `confirm`: the session may
 * have changed since (the seed names a session by name): refused only if it still is once caught up.
 */
export async function checkRate(ctx: PreCheckContext, find: () => Session | undefined, txn: string | undefined, confirm: boolean): Promise<void> {
  const retry = (): boolean => {
    const client = find();
    return txn !== undefined && client !== undefined && ctx.hub.txnId(client.key, txn) !== undefined;
  };
  if (rateRefusal(ctx, find()) === undefined || retry()) return;
  if (confirm || txn !== undefined) await ctx.replica.catchUp();
  const refusal = rateRefusal(ctx, find());
  if (refusal !== undefined && !retry()) throw refusal;
}

/**
 * What the seed endpoint's command would be refused with by the session its name has here, or, with none, what making
 * it would be refused for (hub.newSessionRefusal: for a post, `post`, the address's bucket and share of keys; the caps
 * on sessions), so a flood under fresh names appends nothing past them. Entries not applied yet may have made the
 * name's session or ended others: callers refuse only once caught up (confirmRefusal).
 */
export function seedRefusal(
  ctx: PreCheckContext,
  who: { n: string; k?: string; rq?: 1; v?: 1; a?: string },
  post?: { txn: string | undefined },
): ChatError | undefined {
  const existing = ctx.hub.session(who.n);
  // A name proven here (v) is its session's, whatever token the request carries.
  if (existing !== undefined) {
    if (who.v === undefined && existing.token !== undefined && !sameToken(existing.token, who.k)) return new ChatError("unauthorized", `${existing.name} is claimed: send its token.`);
    return undefined;
  }
  if (who.rq === 1 && who.v === undefined) return new ChatError("unauthorized");
  // The hub's checks, read at the store's clock (see rateRefusal); a retry of a post the name made before passes there.
  return ctx.hub.newSessionRefusal(who.n, who.a, storeNow(ctx.replica), post);
}

/**
 * What a join under `name` would be refused for by the caps on sessions (its address's share, the total),
 * when the name has no session here, as hub.newSessionRefusal judges it; undefined when it has one (apply decides).
 */
export function joinRefusal(ctx: PreCheckContext, name: string, address: string | undefined): ChatError | undefined {
  if (ctx.hub.session(name) !== undefined) return undefined;
  return ctx.hub.newSessionRefusal(name, address, storeNow(ctx.replica));
}

/**
 * What the key table would refuse a post with key `txn` for (a share of its session or address,
 * the total: 429, 503), asked of the hub as a post is judged there, at the store's time and
 * changing nothing. Entries not applied yet only add keys, and a later time only frees some: so
 * it refuses only what applying would (confirmRefusal asks again once caught up).
 */
export function txnRefusal(ctx: PreCheckContext, name: string, client: Session | undefined, address: string | undefined, txn: string | undefined): ChatError | undefined {
  return ctx.hub.txnRefusal(name, client, address, txn, storeNow(ctx.replica));
}

/** `refusal()` again once caught up: throws what it still says, else lets the command through. */
export async function confirmRefusal(replica: Replica, refusal: () => ChatError | undefined): Promise<void> {
  if (refusal() === undefined) return;
  await replica.catchUp();
  const still = refusal();
  if (still !== undefined) throw still;
}

/** 429 for a post `client` (or its address: --rate-per-ip) has no token left for now (checkRate), or undefined; none: seedRefusal. */
export function rateRefusal(ctx: PreCheckContext, client: Session | undefined): ChatError | undefined {
  if (client === undefined) return undefined;
  // The hub's check, read at the store's clock and never moved here:
  // a bucket moves only by entries, at their times, alike on every replica.
  const wait = ctx.hub.postWaitAt(client, storeNow(ctx.replica));
  return wait === 0 ? undefined : new ChatError("rate_limited", undefined, { retryAfter: wait });
}

/** The store's clock now as far as this process can tell: its own, or the newest entry's time if that is ahead (the entry is applied at about then). */
function storeNow(replica: Replica): number {
  return Math.max(Date.now(), msOf(replica.position) + replica.lagMs);
}
