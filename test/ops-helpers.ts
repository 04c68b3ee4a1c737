import { connect, type Socket } from "node:net";

/** Helpers for the ops-*.test.ts files. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: string;
  samples: Sample[];
}

/**
 * A strict parser for the Prometheus text format (0.0.4): every sample
 * belongs to a family declared with # HELP and # TYPE before it, label
 * values are properly quoted, values are numbers, histograms are cumulative.
 * Throws on anything else, so a test that parses has proven the format.
 */
export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  let current: Family | undefined;
  for (const [i, line] of text.slice(0, -1).split("\n").entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (line === "") throw new Error(`empty ${where}`);
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (families.has(m[1]!)) throw new Error(`family declared twice, ${where}`);
      current = { name: m[1]!, help: m[2]!, type: "", samples: [] };
      families.set(current.name, current);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      if (current?.name !== m[1] || current.type !== "") throw new Error(`TYPE without its HELP, ${where}`);
      current.type = m[2]!;
      continue;
    }
    if (line.startsWith("#")) throw new Error(`unknown comment, ${where}`);
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad sample, ${where}`);
    const [, name, , labelText, valueText] = m as unknown as [string, string, string, string | undefined, string];
    if (!current || current.type === "") throw new Error(`sample outside a declared family, ${where}`);
    const allowed = current.type === "histogram" ? ["_bucket", "_sum", "_count"].map((s) => current!.name + s) : [current.name];
    if (!allowed.includes(name)) throw new Error(`sample ${name} does not belong to ${current.name}, ${where}`);
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    if (valueText !== "NaN" && Number.isNaN(value)) throw new Error(`bad value, ${where}`);
    current.samples.push({ name, labels: parseLabels(labelText ?? "", where), value });
  }
  for (const f of families.values()) {
    if (f.type === "") throw new Error(`family ${f.name} has no TYPE`);
    if (f.type === "histogram") checkHistogram(f);
  }
  return families;
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const pattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
  let at = 0;
  while (at < text.length) {
    pattern.lastIndex = at;
    const m = pattern.exec(text);
    if (!m) throw new Error(`bad labels, ${where}`);
    if (Object.hasOwn(labels, m[1]!)) throw new Error(`label given twice, ${where}`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    at = pattern.lastIndex;
  }
  return labels;
}

function checkHistogram(f: Family): void {
  const buckets = f.samples.filter((s) => s.name === `${f.name}_bucket`);
  let last = -Infinity;
  let lastCount = 0;
  for (const b of buckets) {
    const le = b.labels.le === "+Inf" ? Infinity : Number(b.labels.le);
    if (!(le > last)) throw new Error(`${f.name}: buckets out of order`);
    if (b.value < lastCount) throw new Error(`${f.name}: buckets not cumulative`);
    last = le;
    lastCount = b.value;
  }
  if (last !== Infinity) throw new Error(`${f.name}: no +Inf bucket`);
  const count = f.samples.find((s) => s.name === `${f.name}_count`);
  if (!count || count.value !== lastCount) throw new Error(`${f.name}: _count differs from the +Inf bucket`);
  if (!f.samples.some((s) => s.name === `${f.name}_sum`)) throw new Error(`${f.name}: no _sum`);
}

/** The value of one sample (0 when the labelled series does not exist yet). */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}, sample = name): number {
  const family = families.get(name);
  if (!family) throw new Error(`no metric ${name}`);
  const found = family.samples.find((s) => s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value ?? 0;
}

export async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheus(await res.text());
}

/** Opens a raw TCP connection and resolves once it is connected. */
export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Resolves with everything received once the socket closes, or rejects after `timeoutMs`. */
export function closed(socket: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {});
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
  });
}
