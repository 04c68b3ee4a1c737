// How run.js sums up repeated runs of one case: the median, so one run on a
// busy core does not decide a figure.

/** The median of some numbers (the mean of the middle two for an even count); NaN ignored; NaN for none. */
export function median(values) {
  const sorted = values.filter((v) => typeof v === "number" && !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
