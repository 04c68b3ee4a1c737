import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";

/** Who holds a lock: a pid alone is not enough, pids are recycled (pollchat is often pid 1 in a container). */
export interface LockHolder {
  pid: number;
  /** Linux: the process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot). */
  start?: string;
  /** Linux: the boot it started in (/proc/sys/kernel/random/boot_id): a start time means nothing across boots. */
  boot?: string;
  /** Linux: its pid namespace (readlink /proc/self/ns/pid): a pid means nothing in another one (a container). */
  ns?: string;
  /** The host's name, for the one-line refusal. */
  host?: string;
  /**
   * How often, in ms, the holder refreshes the lock file's mtime (dir-lock.ts).
   * Absent in a lock of a version without leases: that one is judged by its pid alone.
   */
  lease?: number;
}

/** A process's pid, start time and boot, or undefined without /proc (then the pid alone is checked). */
export function identify(pid: number): LockHolder | undefined {
  const stat = readQuietly(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = fields[22 - 3];
  if (start === undefined || !/^\d+$/.test(start)) return undefined;
  const boot = readQuietly("/proc/sys/kernel/random/boot_id")?.trim();
  return boot ? { pid, start, boot } : { pid, start };
}

/**
 * This process as its lock records it. Pid and start time only where /proc
 * shows this process's own pid namespace: under `unshare --pid` without
 * --mount-proc, /proc/<our pid> is some other process, and the pid is then
 * worth nothing to a reader (the lease decides).
 */
export function thisProcess(leaseMs: number): LockHolder {
  const ns = ownPidNamespace();
  const me: LockHolder = (ns !== undefined && identify(process.pid)) || { pid: process.pid };
  if (ns !== undefined) me.ns = ns;
  // The boot is the host's, in any namespace: a lease of the same boot was timed by the same clock.
  me.boot ??= readQuietly("/proc/sys/kernel/random/boot_id")?.trim() || undefined;
  return { ...me, host: hostname(), lease: leaseMs };
}

function ownPidNamespace(): string | undefined {
  try {
    if (readlinkSync("/proc/self") !== String(process.pid)) return undefined;
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return undefined;
  }
}

/** Whether the process a lock names still runs: the same pid, and (where known) the same start time and boot. Only for a pid of our own namespace. */
export function isAlive(holder: LockHolder): boolean {
  if (holder.start !== undefined && readQuietly("/proc/self/stat") !== undefined) {
    const now = identify(holder.pid);
    if (now === undefined) return false; // no such process
    if (holder.boot !== undefined && now.boot !== undefined && holder.boot !== now.boot) return false;
    return now.start === holder.start;
  }
  // No /proc here (or an old lock without a start time): the pid is all there is to ask about.
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Whether `other` can be judged by its pid at once: it is in our pid
 * namespace on this boot, or it is a lock without a lease (no other way).
 * Any other holder (another container, another host over NFS) is judged by
 * its lease only: its pid names nothing here.
 */
export function judgedByPid(other: LockHolder, me: LockHolder): boolean {
  if (other.lease === undefined) return true;
  return other.ns !== undefined && other.ns === me.ns && other.boot !== undefined && other.boot === me.boot;
}

export function parseHolder(text: string): LockHolder | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const v = value as Record<string, unknown>;
  if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0) return undefined;
  const holder: LockHolder = { pid: v.pid as number };
  for (const key of ["start", "boot", "ns", "host"] as const) {
    const field = v[key];
    if (typeof field === "string") holder[key] = field;
  }
  if (Number.isSafeInteger(v.lease) && (v.lease as number) > 0) holder.lease = v.lease as number;
  return holder;
}

/** A file that may be gone or unreadable (a /proc file of a process that ended): undefined then. */
function readQuietly(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
