import type { IncomingMessage } from "node:http";
import { ChatError } from "../errors.js";
import type { Identity } from "../hub-types.js";
import { isName } from "../validate.js";
import { verifyJwt } from "./jwt.js";

/**
 * The embedding program's own login (spec §4): the name of the user a request
 * comes from, a promise of it, or undefined for 401. Called wherever a request
 * would create a session or claim a name, never for one that carries its session token.
 */
export type Authenticate = (req: IncomingMessage) => string | undefined | Promise<string | undefined>;

/**
 * `Authorization: Bearer x.y.z`: a JWT by its dots (a session token has none), checked in full by verifyJwt.
 * Up to the first dot no dot is taken, so the match is linear in the header's length.
 */
const BEARER_JWT = /^Bearer\s+([^\s.]*\.\S*)\s*$/i;

/**
 * Who the host application says a request is: a JWT signed with --jwt-secret,
 * or the authenticate hook. With either set, a name can be taken only so
 * (server.ts makes one when options.jwtSecret or options.authenticate is given).
 */
export class IdentitySource {
  readonly #secret: Buffer | undefined;
  readonly #authenticate: Authenticate | undefined;
  readonly #now: () => number;

  constructor(opts: { jwtSecret?: string | undefined; authenticate?: Authenticate | undefined; now?: () => number }) {
    this.#secret = opts.jwtSecret === undefined ? undefined : Buffer.from(opts.jwtSecret, "utf8");
    this.#authenticate = opts.authenticate;
    this.#now = opts.now ?? Date.now;
  }

  /** Whether a JWT proves a name here (--jwt-secret is set). */
  get acceptsJwt(): boolean {
    return this.#secret !== undefined;
  }

  /** The JWT in the request's Authorization header, when it carries one rather than a session token. */
  presentedJwt(req: IncomingMessage): string | undefined {
    if (this.#secret === undefined) return undefined;
    return BEARER_JWT.exec(req.headers.authorization ?? "")?.[1];
  }

  /** The identity a JWT proves; 401 with the reason when it proves none. */
  fromJwt(jwt: string): Identity {
    if (this.#secret === undefined) throw new ChatError("unauthorized", "This server accepts no JWT.");
    const result = verifyJwt(jwt, this.#secret, this.#now());
    if (!result.ok) throw new ChatError("unauthorized", `JWT refused: ${result.reason}.`);
    const { sub, rooms } = result.claims;
    return { name: sub, rooms: rooms === undefined ? undefined : new Set(rooms) };
  }

  /**
   * Who an HTTP request is: the JWT it presents (`jwt`: the join body's, else
   * the Authorization header's) when a secret is set, else what authenticate(req)
   * says. 401 when neither proves a valid name; a bad JWT is never passed on to the hook.
   */
  async ofRequest(req: IncomingMessage, jwt: string | undefined = this.presentedJwt(req)): Promise<Identity> {
    if (jwt !== undefined) return this.fromJwt(jwt);
    if (this.#authenticate === undefined) {
      throw new ChatError("unauthorized", "This needs a JWT (Authorization: Bearer <jwt>) or the session token of POST /api/join.");
    }
    const name = await this.#authenticate(req);
    if (name === undefined) throw new ChatError("unauthorized", "The application does not know who you are: log in first.");
    if (!isName(name)) throw new ChatError("unauthorized", "The application's login gave no valid name.");
    return { name, rooms: undefined };
  }
}
