import { describe, expect, it } from "vitest";
import { resolveOptions } from "../src/config.js";
import { createHttpServer } from "../src/http/http-server.js";
import { Hub } from "../src/hub.js";
import { silentLogger } from "../src/log.js";
import { connectionLimits } from "../src/ops/connection-limit.js";
import { createOps } from "../src/ops/ops.js";

/** The HTTP side alone, as server.ts wires it: a hub, ops, no store, no TCP. */
function httpSide() {
  const options = resolveOptions({ logLevel: "silent" });
  const hub = new Hub(options);
  let openPolls = (): number => 0;
  const ops = createOps(hub, {
    log: silentLogger,
    connections: connectionLimits(options).http,
    openPolls: () => openPolls(),
    sseStreams: () => 0,
    tcpConnections: () => 0,
  });
  const http = createHttpServer({ hub, options, ops });
  openPolls = () => http.openPolls;
  return { hub, http };
}

describe("createHttpServer", () => {
  it("serves the route table on its own node:http server", async () => {
    const { hub, http } = httpSide();
    const { url } = await http.listen(0, "127.0.0.1");
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok\n");
    await http.close();
    hub.close();
  });

  it("counts its held polls, and answers them when it closes", async () => {
    const { hub, http } = httpSide();
    const { url } = await http.listen(0, "127.0.0.1");
    const first = await fetch(`${url}/?name=ann&timeout=0`);
    const cursor = first.headers.get("x-cursor");
    await first.text();
    const held = fetch(`${url}/?name=ann&cursor=${cursor}&timeout=30`);
    for (let i = 0; i < 100 && http.openPolls === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(http.openPolls).toBe(1);
    await http.close();
    const answer = await held;
    expect(answer.status).toBe(200);
    expect(http.openPolls).toBe(0);
    hub.close();
  });
});
