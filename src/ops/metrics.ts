/**
 * A small metrics registry that renders the Prometheus text format (0.0.4).
 * Counters and histograms are updated in O(1); gauges are read only when
 * /metrics is scraped, so a transport reports its count by registering a
 * function, not by pushing updates.
 */

type Labels = Readonly<Record<string, string>>;
const NO_LABELS: Labels = {};

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  render(): string;
}

interface CounterEntry {
  readonly labels: Labels;
  value: number;
}

/** One Map per label, keyed by that label's value: Maps, since label values may come from anywhere. */
type LabelLevel = Map<string, LabelLevel | CounterEntry>;

export class Counter implements Metric {
  readonly type = "counter";
  readonly name: string;
  readonly help: string;
  readonly #labelNames: readonly string[];
  /** Every series, in the order first counted (the order they are rendered in). */
  readonly #entries: CounterEntry[] = [];
  /**
   * The series by label value, one level per label. Nested rather than keyed by
   * the values joined: inc() runs on every request, and a joined key is a new
   * string to hash each time, where a route label is a constant whose hash is kept.
   */
  readonly #index: LabelLevel = new Map();

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    this.name = name;
    this.help = help;
    this.#labelNames = labelNames;
    // An unlabelled counter shows 0 from the start, so a scraper sees it before it first moves.
    if (labelNames.length === 0) this.#entries.push({ labels: {}, value: 0 });
  }

  inc(labels: Labels = NO_LABELS, by = 1): void {
    this.#find(labels, true)!.value += by;
  }

  /** The current value for these labels (0 if never counted). */
  value(labels: Labels = NO_LABELS): number {
    return this.#find(labels, false)?.value ?? 0;
  }

  #find(labels: Labels, create: boolean): CounterEntry | undefined {
    const names = this.#labelNames;
    if (names.length === 0) return this.#entries[0];
    let level = this.#index;
    const last = names.length - 1;
    for (let i = 0; i < last; i++) {
      const value = labels[names[i]!] ?? "";
      let next = level.get(value) as LabelLevel | undefined;
      if (next === undefined) {
        if (!create) return undefined;
        level.set(value, (next = new Map()));
      }
      level = next;
    }
    const value = labels[names[last]!] ?? "";
    let entry = level.get(value) as CounterEntry | undefined;
    if (entry === undefined && create) {
      entry = { labels: pick(labels, names), value: 0 };
      level.set(value, entry);
      this.#entries.push(entry);
    }
    return entry;
  }

  render(): string {
    let out = "";
    for (const { labels, value } of this.#entries) out += `${this.name}${labelText(labels)} ${value}\n`;
    return out;
  }
}

export class Gauge implements Metric {
  readonly type = "gauge";
  readonly name: string;
  readonly help: string;
  readonly read: () => number;

  constructor(name: string, help: string, read: () => number) {
    this.name = name;
    this.help = help;
    this.read = read;
  }

  render(): string {
    return `${this.name} ${formatNumber(this.read())}\n`;
  }
}

export class Histogram implements Metric {
  readonly type = "histogram";
  readonly name: string;
  readonly help: string;
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#bounds = [...bounds].sort((a, b) => a - b);
    this.#counts = this.#bounds.map(() => 0);
  }

  get count(): number {
    return this.#count;
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    // Few buckets (about ten): a linear scan is cheaper than anything clever.
    for (let i = 0; i < this.#bounds.length; i++) {
      if (value <= this.#bounds[i]!) {
        this.#counts[i]!++;
        break;
      }
    }
  }

  render(): string {
    let out = "";
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i]!;
      out += `${this.name}_bucket{le="${formatNumber(this.#bounds[i]!)}"} ${cumulative}\n`;
    }
    out += `${this.name}_bucket{le="+Inf"} ${this.#count}\n`;
    out += `${this.name}_sum ${formatNumber(this.#sum)}\n`;
    out += `${this.name}_count ${this.#count}\n`;
    return out;
  }
}

export class Metrics {
  readonly #metrics = new Map<string, Metric>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  /** A value read at scrape time: a transport reports its count by giving a function, not by pushing updates. */
  gauge(name: string, help: string, read: () => number): Gauge {
    return this.#add(new Gauge(name, help, read));
  }

  histogram(name: string, help: string, bounds: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, bounds));
  }

  get(name: string): Metric | undefined {
    return this.#metrics.get(name);
  }

  /** The whole exposition, in registration order. */
  render(): string {
    let out = "";
    for (const m of this.#metrics.values()) {
      out += `# HELP ${m.name} ${escapeHelp(m.help)}\n# TYPE ${m.name} ${m.type}\n${m.render()}`;
    }
    return out;
  }

  #add<M extends Metric>(metric: M): M {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metric.name)) throw new Error(`bad metric name ${metric.name}`);
    if (this.#metrics.has(metric.name)) throw new Error(`metric ${metric.name} is registered twice`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}

/** The content type Prometheus expects for the text format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function pick(labels: Labels, names: readonly string[]): Labels {
  const out: Record<string, string> = {};
  for (const n of names) out[n] = labels[n] ?? "";
  return out;
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}
