import type { IncomingMessage, ServerResponse } from "node:http";
import type { ResolvedOptions } from "../config.js";
import type { Hub } from "../hub.js";
import type { HeldPolls } from "./long-poll.js";
import type { Query } from "./query.js";

/** What every HTTP handler is given: the hub it speaks to, the options, the open polls. */
export interface HttpContext {
  readonly hub: Hub;
  readonly options: ResolvedOptions;
  readonly held: HeldPolls;
}

export interface Request {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly path: string;
  readonly query: Query;
}
