import { METRICS_CONTENT_TYPE } from "../ops/metrics.js";
import type { HttpContext, Request } from "./context.js";
import { send, sendText } from "./respond.js";

/** GET /healthz: "ok", or 503 with the reason while posts cannot be accepted (spec §8): the log failed. */
export function healthz(ctx: HttpContext, { res }: Request): void {
  const failure = ctx.storeFailure?.();
  if (failure !== undefined) sendText(res, 503, `unavailable: ${failure}\n`, { "Retry-After": "30" });
  else sendText(res, 200, "ok\n");
}

/** GET /metrics: the Prometheus text format. */
export function metrics(ctx: HttpContext, { res }: Request): void {
  send(res, 200, METRICS_CONTENT_TYPE, ctx.ops.metrics.registry.render());
}
