// A room's members come in pages (README, the JSON API): a join answers the
// first with `next` while more follow, and GET /api/rooms/R?after=NEXT the rest.
// The library follows them so its callers get the whole list.

import { field } from "./http.js";

/** Members asked for per request: the server's most, so a room of 10,000 is ten requests. */
const MEMBERS_PER_REQUEST = 1000;
/** Pages followed at most: a server whose `next` never ends cannot keep the library asking. */
const MAX_MEMBER_PAGES = 1000;

/** The query of GET /api/rooms/R for the page after `after` (the first page without). */
function memberPageQuery(after?: string): string {
  return `?limit=${MEMBERS_PER_REQUEST}${after === undefined ? "" : `&after=${encodeURIComponent(after)}`}`;
}

/** The names of one answer (a join's, or a page of GET /api/rooms/R). */
function memberNamesOf(answer: unknown): string[] {
  const members = field(answer, "members");
  return Array.isArray(members) ? members.map(String) : [];
}

/**
 * Every member, from an answer in hand (a join's, or the first page) on,
 * following `next`; `get` asks for GET /api/rooms/R with a query. Each page
 * must move on past the last (names compare case-insensitively), or the walk
 * stops there.
 */
export async function allMembers(first: unknown, get: (query: string) => Promise<unknown>): Promise<string[]> {
  let answer = first;
  const names = memberNamesOf(answer);
  let after: string | undefined;
  for (let pages = 0; pages < MAX_MEMBER_PAGES; pages++) {
    const next = field(answer, "next");
    if (typeof next !== "string" || (after !== undefined && next.toLowerCase() <= after.toLowerCase())) break;
    after = next;
    answer = await get(memberPageQuery(next));
    names.push(...memberNamesOf(answer));
  }
  return names;
}

/** GET /api/rooms/R through every page: the room's name and all its members. */
export async function roomMembers(room: string, get: (query: string) => Promise<unknown>): Promise<{ name: string; members: string[] }> {
  const first = await get(memberPageQuery());
  const name = field(first, "name");
  return { name: typeof name === "string" ? name : room, members: await allMembers(first, get) };
}
