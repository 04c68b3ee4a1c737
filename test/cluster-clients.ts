import { expect } from "vitest";
import { postJson } from "./helpers.js";

/**
 * Clients of a cluster that pick a random process for every request (spec §10):
 * each joins, posts with txn keys (a post is sent twice, to two processes, with
 * one key) and polls with its cursor until it has every message. Checks that each
 * got every message exactly once, in one id order, the same for all.
 */
export async function randomClients(urls: readonly string[], opts: { clients: number; posts: number; deadlineMs?: number }): Promise<{ ids: number[] }> {
  const pick = (): string => urls[Math.floor(Math.random() * urls.length)]!;
  const deadline = Date.now() + (opts.deadlineMs ?? 8000);
  const joined: { name: string; token: string; cursor: number }[] = [];
  for (let c = 0; c < opts.clients; c++) {
    const r = await postJson(`${pick()}/api/join`, { name: `c${c}` });
    expect(r.status).toBe(200);
    joined.push({ name: `c${c}`, token: r.body.token, cursor: r.body.cursor });
  }
  const expected = opts.clients * opts.posts;
  const posted: number[] = [];
  const post = async (client: (typeof joined)[number], i: number): Promise<void> => {
    const body = { text: `${client.name}-${i}`, txn: `${client.name}-${i}` };
    const auth = { authorization: `Bearer ${client.token}` };
    const first = await postJson(`${pick()}/api/messages`, body, auth);
    // The same post again on some process, as a client whose answer was lost: one message, the same id.
    const again = await postJson(`${pick()}/api/messages`, body, auth);
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.body.id).toBe(first.body.id);
    posted.push(first.body.id);
  };
  const poll = async (client: (typeof joined)[number]): Promise<number[]> => {
    const got: number[] = [];
    while (got.length < expected && Date.now() < deadline) {
      const res = await fetch(`${pick()}/api/poll?cursor=${client.cursor}&timeout=500`, { headers: { authorization: `Bearer ${client.token}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { messages: { id: number; type: string }[]; cursor: number };
      for (const m of body.messages) if (m.type === "message") got.push(m.id);
      client.cursor = body.cursor;
    }
    return got;
  };
  const polling = joined.map((client) => poll(client));
  await Promise.all(
    joined.map(async (client) => {
      for (let i = 0; i < opts.posts; i++) await post(client, i);
    }),
  );
  const received = await Promise.all(polling);
  const ids = [...posted].sort((a, b) => a - b);
  expect(new Set(posted).size).toBe(expected);
  for (const got of received) expect(got).toEqual(ids);
  return { ids };
}
