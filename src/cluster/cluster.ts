import { randomBytes } from "node:crypto";
import { DEFAULTS, type ResolvedOptions } from "../config.js";
import type { Hub } from "../hub.js";
import type { Metrics } from "../ops/metrics.js";
import { Replica } from "./replica.js";
import { replicaHub } from "./replica-hub.js";
import { SharedPresence } from "./shared-presence.js";
import { restoreSnapshot } from "./snapshot-lines.js";
import { SnapshotSaver } from "./snapshot-saver.js";
import type { SharedLog } from "./shared-log.js";

/** This process as one of several sharing a store (spec §10): its hub, the replica that feeds it, the log. */
export interface Cluster {
  readonly hub: Hub;
  readonly replica: Replica;
  readonly log: SharedLog;
  /** Reads the shared log until caught up: the process listens only after it. Rejects (one line) when the store cannot be reached. */
  start(): Promise<void>;
  /** Why this process cannot serve now (the store unreachable, the shared state loading), or undefined: /healthz says it. */
  failure(): string | undefined;
  /** Saves the shared state now and then (undefined before start()). */
  saver(): SnapshotSaver | undefined;
  /** Times the store was found to have lost its data, and this process started over in a new epoch. */
  readonly epochResets: number;
  /** Times this process fell behind the log's trim and loaded the newest snapshot again, in place. */
  readonly resyncs: number;
  /** The store's state on /metrics. */
  registerMetrics(registry: Metrics): void;
  close(): Promise<void>;
}

/**
 * When the shared log lost its data (Redis restarted empty, flushed), this process
 * starts over in the new epoch, in place (same process, same sockets): its hub is
 * made empty as a new replica's is (every session ends, without a notice: old tokens
 * get 401, and a client joining again with its old cursor gets a gap), and its first
 * append is a floor record with its last id, so ids go on above every id it issued.
 * When it fell behind the log's trim instead (cut off from Redis while the others went on),
 * it loads the newest snapshot in place (resync): its connections end, their sessions go on.
 * `lost`: this process cannot go on with the store (its limits differ from the ones set
 * in a new epoch): the CLI exits 1.
 */
export function createCluster(options: ResolvedOptions, log: SharedLog, warn: (line: string) => void, lost: (reason: string) => void): Cluster {
  const { hub, clock } = replicaHub(options, { lastId: 0, at: 0 });
  const replica = new Replica(hub, log, clock, { origin: randomBytes(6).toString("base64url"), warn, vouchedOnly: identityOn(options) });
  let presence: SharedPresence | undefined;
  let saver: SnapshotSaver | undefined;
  let epochResets = 0;
  let resyncs = 0;
  let closed = false;
  /** The highest id this process has known in any epoch: a reset before the last floor was stored must not forget it. */
  let floor = 0;
  /** Empty as a replica made now is (replica-hub.ts): every replica applies the log after a snapshot to the same state. */
  const emptyHub = (goesOn: boolean): void => {
    floor = Math.max(floor, hub.lastId);
    clock.at = 0;
    try {
      hub.startOver(0, goesOn);
    } finally {
      clock.at = undefined;
    }
  };
  /** The newest snapshot (of the epoch this replica is in), loaded into its emptied hub, unless it moved on meanwhile. */
  const loadLatest = (resets: number, syncs: number) => async (): Promise<string | undefined> => {
    const latest = await log.snapshots.latest();
    return latest && resets === epochResets && syncs === resyncs ? restoreSnapshot(hub, clock, replica, options, latest.chunks) : undefined;
  };
  const startOver = (reason: string): void => {
    epochResets++;
    warn(`pollchat: ${reason}: every session ends (their tokens get 401, their cursors a gap)`);
    emptyHub(false);
    const resets = epochResets;
    // The new epoch's newest snapshot, if one was saved already (its log may be trimmed below it).
    replica.startOver(floor, loadLatest(resets, resyncs));
    // The new epoch's first process sets them again; one that set others meanwhile cannot be followed.
    // (Redis gone again before they could be said: said again every 2 s until it answers, as long as this epoch lasts:
    // a process that gave up would let a later one set other limits, and replicas would apply the log differently.)
    // The key new tokens are signed with is agreed again too (Redis may have lost it: token-marks.ts).
    const agree = (): void =>
      void agreeOnLimits(options, log)
        .then(async (differ) => (differ !== undefined ? lost(differ) : await replica.tokens.open()))
        .catch(() => resets === epochResets && !closed && void setTimeout(agree, 2000).unref());
    agree();
  };
  const resync = (reason: string): void => {
    if (replica.restoring) return;
    resyncs++;
    warn(`pollchat: ${reason}: it loads the newest snapshot again; its connections end, their sessions go on`);
    // TCP sessions live with their connections here, which the reload ends.
    const tcp = [...hub.sessions()].filter((c) => !c.resumable && c.presenceHolds > 0 && c.token !== undefined).map((c) => c.token!);
    replica.ackNow(); // where polls here left the queues, while the sessions are still the hub's
    emptyHub(true);
    replica.resync(loadLatest(epochResets, resyncs));
    // Their sessions end on every process, as when a connection closes (read after the snapshot, applied to it).
    for (const token of tcp) void replica.submit({ t: "leave", k: token }, () => undefined).catch(() => {});
  };
  return {
    hub,
    replica,
    log,
    saver: () => saver,
    get epochResets() {
      return epochResets;
    },
    get resyncs() {
      return resyncs;
    },
    async start() {
      await log.open?.();
      log.onNewEpoch?.(startOver);
      log.onTrimmedPast?.(resync);
      const differ = await agreeOnLimits(options, log);
      if (differ !== undefined) throw new Error(differ);
      await replica.tokens.open();
      // The newest snapshot, then the entries after it: a process joining late reads no more of the log than that.
      const resets = epochResets;
      const latest = await log.snapshots.latest();
      // Redis lost its data meanwhile: startOver() loads the new epoch's snapshot instead (never two in one hub).
      await replica.start(latest && resets === epochResets ? restoreSnapshot(hub, clock, replica, options, latest.chunks) : undefined);
      // Started over or resynced while it started: it listens once caught up with what it reads now.
      if (resets !== epochResets || resyncs > 0) await replica.catchUp();
      // Sessions no proof made, from before the identity source was set, end on every process by one entry, before this one serves.
      if (identityOn(options) && hub.hasUnproven) await replica.submit({ t: "unproven" }, () => undefined);
      presence ??= new SharedPresence(hub, replica, log.presence, options);
      saver ??= new SnapshotSaver(hub, replica, log.snapshots, { every: options.redisSnapshotEvery, warn });
    },
    failure: () => {
      if (!log.connected) return "the shared store (redis) is unreachable";
      return replica.restoring ? "loading the shared state (redis)" : log.writeFailure;
    },
    registerMetrics(registry) {
      registry.gauge("pollchat_redis_connected", "1 while the shared store (Redis) answers, else 0.", () => (log.connected ? 1 : 0));
      registry.gauge("pollchat_redis_lag_seconds", "How far this process's replica is behind the newest entry of the shared log it knows.", () => replica.lagMs / 1000);
      registry.gauge("pollchat_redis_reconnects", "Times the link to the shared store came back after a loss.", () => log.reconnects ?? 0);
      registry.gauge("pollchat_redis_snapshots_saved", "Snapshots of the shared state this process saved.", () => saver?.saved.count ?? 0);
      registry.gauge("pollchat_redis_applied_total", "Entries of the shared log applied by this process.", () => replica.stats.applied);
      registry.gauge("pollchat_redis_epoch_resets", "Times Redis was found to have lost its data and this process started over in a new epoch.", () => epochResets);
      registry.gauge("pollchat_redis_resyncs", "Times this process fell behind the shared log's trim and loaded the newest snapshot again.", () => resyncs);
    },
    async close() {
      closed = true;
      presence?.close();
      saver?.close();
      replica.close();
      log.close();
    },
  };
}

/** The flags every replica applies entries with: they must be the same on every process, or replicas would disagree. */
const SHARED_LIMITS = [
  "maxQueue",
  "sessionTtlMs",
  "presenceLimit",
  "maxMessage",
  "rate",
  "ratePerIp",
  "maxSessions",
  "history",
  "maxHistoryBytes",
  "maxRoomsPerSession",
  "maxRooms",
  "maxSessionsPerIp",
  "requireToken",
] as const;

/**
 * Shared limits that came after the first: written only when not at their default, and read as
 * their default when the key lacks them, so processes that wrote the key before them still agree.
 */
const LATER_LIMITS = ["maxQueueBytes", "maxQueuedBytes", "maxQueuedBytesPerIp", "maxTxnKeysPerIp", "maxTxnKeys"] as const;

/** An identity source is set: names are taken only with a proof (--jwt-secret, authenticate). */
function identityOn(options: ResolvedOptions): boolean {
  return options.jwtSecret !== undefined || options.authenticate !== undefined;
}

/**
 * Why this process cannot join (one line): its limits differ from those the deployment's (or epoch's)
 * first process set in Redis; undefined when they are the same.
 * `identity` is agreed too, as on or off only (the secret stays out of Redis): replicas with and without
 * a source would disagree on who may claim a name. Off, it is left out, as processes before it wrote the key.
 */
async function agreeOnLimits(options: ResolvedOptions, log: SharedLog): Promise<string | undefined> {
  const mine: Record<string, unknown> = Object.fromEntries(SHARED_LIMITS.map((name) => [name, options[name]]));
  if (identityOn(options)) mine.identity = "on";
  for (const name of LATER_LIMITS) if (options[name] !== DEFAULTS[name]) mine[name] = options[name];
  const theirs = JSON.parse(await log.agree("limits", JSON.stringify(mine))) as Record<string, unknown>;
  for (const name of LATER_LIMITS) {
    theirs[name] ??= DEFAULTS[name];
    mine[name] = options[name];
  }
  const differ = [...SHARED_LIMITS, ...LATER_LIMITS, "identity"].filter((name) => theirs[name] !== mine[name]);
  if (differ.length === 0) return undefined;
  const shown = (value: unknown): string => String(value ?? "off");
  const what = differ.map((name) => `${name} ${shown(mine[name])} (the cluster's: ${shown(theirs[name])})`).join(", ");
  log.close();
  return `redis: this process's limits differ from the cluster's: ${what}; run every process with the same, or stop them all and delete ${options.redisPrefix}:limits to change them`;
}
