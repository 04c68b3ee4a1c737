// Preloaded into a server under test (node --expose-gc --import mem-probe.js ...),
// so the bench can read its heap without the server having a metrics endpoint:
// on SIGUSR2 it collects garbage and writes one "@@mem {json}" line to stderr.
import { writeSync } from "node:fs";

process.on("SIGUSR2", () => {
  globalThis.gc?.();
  const m = process.memoryUsage();
  writeSync(2, `@@mem ${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
});
