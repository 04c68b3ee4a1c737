import type { IncomingMessage, ServerResponse } from "node:http";
import type { ResolvedOptions } from "../config.js";
import type { Hub } from "../hub.js";
import type { IdentitySource } from "../identity/identity-source.js";
import type { Ops } from "../ops/ops.js";
import type { OpenResponses } from "./open-responses.js";
import type { PollDeadlines } from "./poll-deadlines.js";
import type { Query } from "./query.js";
import type { Replica } from "../cluster/replica.js";

/** What every HTTP handler is given: the hub it speaks to, the options, the open polls. */
export interface HttpContext {
  readonly hub: Hub;
  readonly options: ResolvedOptions;
  /** Long-polls held open now: answered on shutdown, counted by pollchat_open_polls. */
  readonly openPolls: PollDeadlines;
  /** Open SSE streams, to be finished with a reason on shutdown. */
  readonly streams: OpenResponses;
  /** Metrics, the log, shutdown hooks and the per-address connection cap. */
  readonly ops: Ops;
  /** With --data-dir: resolves once everything accepted so far is on disk. Posts are answered after it. */
  readonly durable?: () => Promise<void>;
  /** With --data-dir: why nothing can be written now (the log failed), undefined while all is well. */
  readonly storeFailure?: () => string | undefined;
  /** With --jwt-secret or authenticate: who the host says a request is; a name is taken only so (http/vouched.ts). */
  readonly identity?: IdentitySource;
  /** With --redis: this process's replica of the shared log; state changes go through it (cluster/cluster-http.ts). */
  readonly cluster?: Replica;
  /** With --redis: the mark a poll answer carries (the newest position applied here, signed: cluster/token-marks.ts). */
  readonly pollMark?: () => string | undefined;
}

export interface Request {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly path: string;
  readonly query: Query;
}
