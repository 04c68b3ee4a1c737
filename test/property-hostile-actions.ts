import fc from "fast-check";

/**
 * What the hostile property generates: a few honest observers, then a list of
 * actions by anonymous clients. Clients and rooms are small indices, mapped to
 * names fresh to each run (h<run>x<i>, r<run>a), so shrinking keeps meaning.
 *
 * Rooms 0 and 1 are the ones observers may be in; room 2 no observer joins.
 */
export type RoomIx = 0 | 1 | 2;
/** A cursor as a hostile client sends it: none, 0, or far beyond any id (the server clamps it). */
export type CursorKind = "none" | "zero" | "huge";

export interface ObserverSpec {
  /** "poll": GET /api/poll with its cursor; "sse": /api/events, reconnecting with Last-Event-ID. */
  transport: "poll" | "sse";
  rooms: (0 | 1)[];
}

export type TcpLine =
  | { kind: "msg" }
  | { kind: "private"; obs: number }
  | { kind: "join"; room: RoomIx }
  | { kind: "leave" }
  | { kind: "who" }
  | { kind: "garbage"; text: string };

export type Action =
  /** evil: the text holds an ESC sequence, a bidi override and a backspace (refused, or escaped on text transports). */
  | { kind: "seedPost"; who: number; room: RoomIx | null; to: number | null; txn: boolean; evil: boolean }
  | { kind: "seedPoll"; who: number; room: RoomIx | null; cursor: CursorKind; hold: boolean }
  | { kind: "apiJoin"; who: number; room: RoomIx }
  | { kind: "apiPost"; who: number; room: RoomIx; to: number | null; txn: boolean }
  | { kind: "apiLeave"; who: number; room: RoomIx | null }
  | { kind: "apiPoll"; who: number; cursor: CursorKind; hold: boolean }
  /** read: a while, then closes; slow: stops reading, then reads and closes; abandon: never reads, never closes; leave: never reads, ends its session. */
  | { kind: "sse"; who: number; mode: "read" | "slow" | "abandon" | "leave" }
  | { kind: "tcp"; who: number; lines: TcpLine[]; end: "exit" | "destroy" | "idle" }
  /**
   * One write of `count` seed requests on one connection: polls that hold, posts,
   * both, or polls that each join a new room; then reads every answer, half of them, or none.
   */
  | { kind: "pipeline"; who: number; count: number; mix: "polls" | "posts" | "mixed" | "rooms"; read: "all" | "half" | "none" }
  /** A post with a txn key whose connection is cut right after the write, then the same post again. */
  | { kind: "txnRetry"; who: number; room: RoomIx }
  /** A poll without cursor read for `bytes` and closed. */
  | { kind: "cutRead"; who: number; bytes: number }
  /** Someone uses an observer's name without its token, or posts by GET with only its cookie. */
  | { kind: "impersonate"; obs: number; what: "poll" | "post" | "tcp" | "cookie" }
  | { kind: "observerMove"; obs: number; room: 0 | 1; op: "leave" | "join" }
  /** The observer's connection breaks; it comes back with its cursor. */
  | { kind: "observerCut"; obs: number }
  /** The observer stops reading for a while. */
  | { kind: "observerSlow"; obs: number }
  /**
   * Many senders fill a room (several MB) that a careless reader (no cursor)
   * is in; it reads part of one answer and closes, then polls the rest. With
   * sseLeave, a stream in the room that never reads ends its session meanwhile.
   */
  | { kind: "flood"; sseLeave: boolean }
  | { kind: "parallel"; actions: Action[] };

/** Posters per run. */
export const POSTERS = 4;

const who = fc.integer({ min: 0, max: POSTERS - 1 });
const room = fc.constantFrom<RoomIx>(0, 1, 2);
const obs = fc.integer({ min: 0, max: 2 });
const cursor = fc.constantFrom<CursorKind>("none", "zero", "huge");

const tcpLine: fc.Arbitrary<TcpLine> = fc.oneof(
  { arbitrary: fc.constant({ kind: "msg" as const }), weight: 4 },
  fc.record({ kind: fc.constant("private" as const), obs }),
  fc.record({ kind: fc.constant("join" as const), room }),
  fc.constant({ kind: "leave" as const }),
  fc.constant({ kind: "who" as const }),
  fc.record({ kind: fc.constant("garbage" as const), text: fc.constantFrom("\u001b[2Kx", "\u202Eevil", "/join bad room!", "y".repeat(9000), "@nobody hi", "") }),
);

const simple: fc.Arbitrary<Action> = fc.oneof(
  {
    arbitrary: fc.record({ kind: fc.constant("seedPost" as const), who, room: fc.option(room, { nil: null }), to: fc.option(obs, { nil: null, freq: 4 }), txn: fc.boolean(), evil: fc.constantFrom(false, false, false, true) }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant("seedPoll" as const), who, room: fc.option(room, { nil: null }), cursor, hold: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("apiJoin" as const), who, room }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("apiPost" as const), who, room, to: fc.option(obs, { nil: null, freq: 4 }), txn: fc.boolean() }), weight: 5 },
  { arbitrary: fc.record({ kind: fc.constant("apiLeave" as const), who, room: fc.option(room, { nil: null }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("apiPoll" as const), who, cursor, hold: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("sse" as const), who, mode: fc.constantFrom("read" as const, "slow" as const, "abandon" as const, "leave" as const) }), weight: 3 },
  {
    arbitrary: fc.record({ kind: fc.constant("tcp" as const), who, lines: fc.array(tcpLine, { maxLength: 6 }), end: fc.constantFrom("exit" as const, "destroy" as const, "idle" as const) }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("pipeline" as const),
      who,
      count: fc.oneof(fc.integer({ min: 2, max: 12 }), fc.constant(300)),
      mix: fc.constantFrom("polls" as const, "posts" as const, "mixed" as const, "rooms" as const),
      read: fc.constantFrom("all" as const, "half" as const, "none" as const),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant("txnRetry" as const), who, room }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("cutRead" as const), who, bytes: fc.integer({ min: 1, max: 400 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("impersonate" as const), obs, what: fc.constantFrom("poll" as const, "post" as const, "tcp" as const, "cookie" as const) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("observerMove" as const), obs, room: fc.constantFrom<0 | 1>(0, 1), op: fc.constantFrom("leave" as const, "join" as const) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("observerCut" as const), obs }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("observerSlow" as const), obs }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("flood" as const), sseLeave: fc.boolean() }), weight: 1 },
);

export const action: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: simple, weight: 5 },
  { arbitrary: fc.record({ kind: fc.constant("parallel" as const), actions: fc.array(simple, { minLength: 2, maxLength: 3 }) }), weight: 1 },
);

export const observerSpec: fc.Arbitrary<ObserverSpec> = fc.record({
  transport: fc.constantFrom("poll" as const, "sse" as const),
  rooms: fc.subarray<0 | 1>([0, 1], { minLength: 1 }),
});

export interface RunSpec {
  observers: ObserverSpec[];
  actions: Action[];
}

export const runSpec: fc.Arbitrary<RunSpec> = fc.record({
  observers: fc.array(observerSpec, { minLength: 1, maxLength: 3 }),
  // "max": lengths spread over the whole range, not fast-check's small default.
  actions: fc.array(action, { minLength: 1, maxLength: 25, size: "max" }),
});

/**
 * Runs the property always tries first: the recipes of issue 10 that random
 * sequences find only now and then. Pipelines of 300 polls, posts past the
 * rate limit into new rooms, and joins of 300 rooms; a flood cut by a careless
 * reader, with a stream that ends its session unread; streams left unread, a
 * terminal-rewriting post read as text, a GET that posts with only the cookie.
 */
export const EXAMPLES: RunSpec[] = [
  {
    observers: [{ transport: "poll", rooms: [0] }, { transport: "sse", rooms: [0, 1] }],
    actions: [
      { kind: "pipeline", who: 0, count: 300, mix: "polls", read: "all" },
      { kind: "pipeline", who: 1, count: 300, mix: "posts", read: "all" },
      { kind: "pipeline", who: 2, count: 300, mix: "rooms", read: "all" },
      { kind: "apiJoin", who: 3, room: 1 },
      { kind: "apiPost", who: 3, room: 1, to: 0, txn: true },
    ],
  },
  {
    observers: [{ transport: "sse", rooms: [0] }],
    actions: [
      { kind: "flood", sseLeave: true },
      { kind: "seedPost", who: 0, room: 0, to: null, txn: false, evil: false },
    ],
  },
  {
    observers: [{ transport: "sse", rooms: [0] }, { transport: "poll", rooms: [1] }],
    actions: [
      { kind: "apiJoin", who: 0, room: 0 },
      { kind: "sse", who: 0, mode: "leave" },
      { kind: "apiJoin", who: 1, room: 1 },
      { kind: "sse", who: 1, mode: "abandon" },
      { kind: "tcp", who: 2, lines: [{ kind: "join", room: 0 }, { kind: "msg" }, { kind: "private", obs: 1 }], end: "idle" },
      { kind: "seedPoll", who: 3, room: 0, cursor: "none", hold: false },
      { kind: "parallel", actions: [{ kind: "observerCut", obs: 0 }, { kind: "seedPost", who: 3, room: 0, to: null, txn: true, evil: true }] },
      { kind: "seedPoll", who: 3, room: null, cursor: "none", hold: false },
      { kind: "impersonate", obs: 1, what: "cookie" },
      { kind: "txnRetry", who: 3, room: 1 },
    ],
  },
];
