import { createHash } from "node:crypto";

/** A Lua script, run by its SHA1 (EVALSHA) so its source crosses the wire once per Redis server. */
export class RedisScript {
  readonly source: string;
  readonly sha1: string;

  constructor(source: string) {
    this.source = source;
    this.sha1 = createHash("sha1").update(source).digest("hex");
  }
}
