import { EventEmitter, once } from "node:events";
import { History, now, type Rng } from "./fault-history.js";
import type { Processes } from "./fault-processes.js";

/** What every client of the fault test shares: the processes, the history, and when to stop. */
export class World {
  readonly history = new History();
  /** Fires on every answer a reader got, so waits on readers are event-based. */
  readonly progress = new EventEmitter();
  postsDone = false;
  readersDone = false;

  constructor(readonly procs: Processes) {
    this.progress.setMaxListeners(0);
  }

  /** A random running process, another than `avoid` when there is one; undefined when none runs. */
  pick(rng: Rng, avoid?: number): number | undefined {
    const up: number[] = [];
    for (let slot = 0; slot < this.procs.count; slot++) if (this.procs.url(slot) !== undefined) up.push(slot);
    if (up.length === 0) return undefined;
    const others = up.filter((s) => s !== avoid);
    return rng.pick(others.length > 0 ? others : up);
  }

  /** Resolves on the next reader answer, or after `ms` (a bounded wait for progress). */
  async nextProgress(ms: number): Promise<void> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), ms);
    try {
      await once(this.progress, "answer", { signal: ac.signal });
    } catch {
      // the deadline passed: the caller checks its own condition again
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface Answer {
  proc: number;
  sentAt: number;
  answeredAt: number;
  status: number | "none";
  text: string;
  error?: string;
}

/**
 * One HTTP request to a process with a deadline for the whole exchange (AbortSignal.timeout
 * covers the body too). Statuses outside 2xx go into the history. A request to a process that
 * is down (no URL) is an answer with status "none".
 */
export async function request(
  world: World,
  proc: number,
  what: string,
  reader: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown; timeoutMs: number },
): Promise<Answer> {
  const sentAt = now();
  const base = world.procs.url(proc);
  if (base === undefined) return { proc, sentAt, answeredAt: now(), status: "none", text: "", error: "process down" };
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  try {
    const res = await fetch(`${base}${path}`, {
      method: init.method ?? "GET",
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(init.timeoutMs),
    });
    const text = await res.text();
    const answeredAt = now();
    if (res.status < 200 || res.status > 299)
      world.history.status({ what, reader, proc, status: res.status, at: answeredAt, body: text.slice(0, 300) });
    // A 503 that says it may have taken effect is no answer: asked again with the same txn, as the README says.
    if (res.headers.get("x-fate") === "unknown") return { proc, sentAt, answeredAt, status: "none", text, error: "503, fate unknown" };
    return { proc, sentAt, answeredAt, status: res.status, text };
  } catch (error) {
    return {
      proc,
      sentAt,
      answeredAt: now(),
      status: "none",
      text: "",
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    };
  }
}

/** A JSON body, or undefined when it is not JSON. */
export function json<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** A pause between a client's actions: pacing of the workload, bounded, never a wait for an event. */
export function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A room's whole history on one process, oldest first, one line per entry ("id type from text"); a string when it cannot be read. */
export async function roomHistory(world: World, proc: number, room: string): Promise<string[] | string> {
  const lines: string[] = [];
  let before = "";
  for (let page = 0; page < 1000; page++) {
    const answer = await request(world, proc, "history", "checker", `/api/rooms/${room}/messages?limit=1000${before}`, {
      timeoutMs: 15_000,
    });
    const body = json<{ messages: { id: number; type: string; from: string; text: string }[] }>(answer.text);
    if (answer.status !== 200 || body === undefined) return `${answer.status} ${answer.error ?? answer.text.slice(0, 200)}`;
    lines.unshift(...body.messages.map((m) => `${m.id} ${m.type} ${m.from} ${m.text}`));
    if (body.messages.length < 1000) return lines;
    before = `&before=${body.messages[0]!.id}`;
  }
  return lines;
}
