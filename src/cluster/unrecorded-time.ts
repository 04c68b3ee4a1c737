/** A span of time, [from, to] in ms, during which some process could not record presence (shared-presence.ts). */
export type Span = readonly [number, number];

/** Spans kept and read are bounded: the newest this many (one per process per outage). */
export const MAX_SPANS = 256;

/**
 * How long a session last seen at `seenAt` has been unseen at `now`, leaving out the time
 * covered by `spans` (they may overlap: their union counts once).
 */
export function unseenFor(seenAt: number, now: number, spans: readonly Span[]): number {
  if (now <= seenAt) return 0;
  const inside = spans
    .map(([from, to]): Span => [Math.max(from, seenAt), Math.min(to, now)])
    .filter(([from, to]) => to > from)
    .sort((x, y) => x[0] - y[0]);
  let covered = 0;
  let reach = seenAt;
  for (const [from, to] of inside) {
    if (to <= reach) continue;
    covered += to - Math.max(from, reach);
    reach = to;
  }
  return now - seenAt - covered;
}

/** A span as the store keeps it ("from-to"), and back; undefined for anything else. */
export function encodeSpan([from, to]: Span): string {
  return `${from}-${to}`;
}

export function decodeSpan(text: string): Span | undefined {
  const match = /^(\d{1,15})-(\d{1,15})$/.exec(text);
  if (!match) return undefined;
  const from = Number(match[1]);
  const to = Number(match[2]);
  return to >= from ? [from, to] : undefined;
}
