import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy in front of a redis-server for tests: `stall()` holds what the
 * connections open now send (and drops what Redis answers them), as a network
 * that went dark on them would; the client gives up on them and connects again,
 * through the proxy, on connections that work. `release()` then delivers the held
 * bytes to Redis, late, and closes those connections: what a dead connection's
 * bytes still in flight do.
 */
export interface StallProxy {
  /** `redis://127.0.0.1:<proxy port>`. */
  readonly url: string;
  stall(): void;
  /** Delivers the held bytes; resolves once Redis has read them and closed those connections. */
  release(): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  held: Buffer[] | undefined;
}

export async function stallProxy(redisPort: number): Promise<StallProxy> {
  const pairs = new Set<Pair>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host: "127.0.0.1", port: redisPort });
    const pair: Pair = { client, upstream, held: undefined };
    pairs.add(pair);
    client.on("error", () => {});
    upstream.on("error", () => {});
    client.on("data", (chunk: Buffer) => (pair.held ? pair.held.push(chunk) : upstream.write(chunk)));
    upstream.on("data", (chunk: Buffer) => void (pair.held === undefined && client.write(chunk)));
    // A stalled connection's upstream stays open when the client gives up: its bytes are still on their way.
    client.on("close", () => void (pair.held === undefined && upstream.destroy()));
    upstream.on("close", () => {
      pairs.delete(pair);
      client.destroy();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    url: `redis://127.0.0.1:${address.port}`,
    stall() {
      for (const pair of pairs) pair.held ??= [];
    },
    async release() {
      const stalled = [...pairs].filter((pair) => pair.held !== undefined);
      await Promise.all(
        stalled.map(async (pair) => {
          const closed = once(pair.upstream, "close");
          for (const chunk of pair.held!) pair.upstream.write(chunk);
          pair.upstream.end();
          await closed;
        }),
      );
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
