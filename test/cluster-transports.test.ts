import { afterEach, describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { LineClient, SseClient } from "./transport-clients.js";

/** SSE and the TCP gateway on every process of a cluster (issue 12, spec §10): one room across processes and transports. */

const servers: TestServer[] = [];
const open: { close(): void }[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function cluster(n: number): Promise<TestServer[]> {
  const log = new MemoryLog();
  const made: TestServer[] = [];
  for (let i = 0; i < n; i++) made.push(await startServer({ tcpPort: 0, sharedLog: log.client() }));
  servers.push(...made);
  return made;
}

describe("transports across processes", () => {
  it("a TCP line on A reaches an SSE stream on B and a poll on C; an HTTP post on C reaches the TCP client on A", async () => {
    const [a, b, c] = await cluster(3);
    const sseUser = await joinApi(b!.url, "streamer");
    const poller = await joinApi(c!.url, "poller");
    const stream = new SseClient(`${b!.url}/api/events`, sseUser.auth);
    open.push(stream);
    const line = await LineClient.named(a!.tcpPort!, "liner");
    open.push({ close: () => line.socket.destroy() });
    // The TCP name is taken on every process.
    expect((await postJson(`${c!.url}/api/join`, { name: "liner" })).status).toBe(409);
    line.send("from tcp\n");
    await stream.waitFor((e) => e.event === "message" && JSON.parse(e.data).text === "from tcp", "the TCP line on SSE");
    const res = await fetch(`${c!.url}/api/poll?cursor=${poller.cursor}&timeout=2000`, { headers: poller.auth });
    const texts = ((await res.json()) as { messages: { text: string }[] }).messages.map((m) => m.text);
    expect(texts).toContain("from tcp");
    expect((await postJson(`${c!.url}/api/messages`, { text: "to tcp" }, poller.auth)).status).toBe(201);
    await line.waitFor((l) => l === "poller : to tcp", "the HTTP post on TCP");
    // The TCP connection closes: its session ends on every process, with one leave.
    line.socket.destroy();
    await stream.waitFor((e) => e.event === "leave" && JSON.parse(e.data).from === "liner", "liner's leave");
    const deadline = Date.now() + 3000;
    while ((await postJson(`${b!.url}/api/join`, { name: "liner" })).status !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(stream.events.filter((e) => e.event === "leave").length).toBe(1);
  }, 15_000);

  it("a /token line on a process that has not caught up yet still speaks as that session", async () => {
    const [a, b] = await cluster(2);
    const owner = await joinApi(a!.url, "owner");
    const client = new LineClient(b!.tcpPort!);
    open.push({ close: () => client.socket.destroy() });
    await client.waitFor((l) => l === "What is your name?");
    client.send(`/token ${owner.token}\nhello\n`);
    await client.waitFor((l) => l === "* you are owner, in lobby", "the token accepted");
    const res = await fetch(`${a!.url}/api/rooms/lobby/messages`);
    const deadline = Date.now() + 3000;
    let texts = ((await res.json()) as { messages: { text: string }[] }).messages.map((m) => m.text);
    while (!texts.includes("hello") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      texts = ((await (await fetch(`${a!.url}/api/rooms/lobby/messages`)).json()) as { messages: { text: string }[] }).messages.map((m) => m.text);
    }
    expect(texts).toContain("hello");
  }, 15_000);
});
