import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect, type Chat } from "../src/client/index.js";
import { Recorder } from "./client-helpers.js";
import { ensureBuilt, startServer, type TestServer } from "./helpers.js";

// /client.js in Debian's Chromium: imported on its own by a page that is not the chat page, and as the chat page's base.

const CHROMIUM = "/usr/bin/chromium";
const WAIT = { timeout: 10_000 };

let browser: Browser;
const contexts: BrowserContext[] = [];
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  await ensureBuilt();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close();
  for (const close of closers.splice(0)) await close();
});

async function server(): Promise<TestServer> {
  const s = await startServer();
  closers.push(() => s.close());
  return s;
}

async function newPage(): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  return { page, errors };
}

async function nodeClient(url: string, name: string): Promise<Recorder> {
  const chat: Chat = await connect(url, { name });
  closers.push(() => chat.close());
  return new Recorder(chat);
}

describe("/client.js in a browser", () => {
  it("imported on its own in a blank page, exchanges messages both ways with a Node client over a stream", async () => {
    const s = await server();
    const { page, errors } = await newPage();
    // A page of the server's origin that is not the chat page: a module from it needs no CORS.
    await page.goto(`${s.url}/healthz`);
    // Plain JavaScript, as a page would have it (and untouched by the test runner's transforms).
    await page.addScriptTag({
      type: "module",
      content: `
        import { connect } from "/client.js";
        const chat = await connect(location.origin, { name: "dora" });
        const received = [];
        chat.on("message", (m) => { if (m.type === "message") received.push(m.text); });
        Object.assign(globalThis, { chat, received });
      `,
    });
    await page.waitForFunction(() => "chat" in globalThis, undefined, WAIT);
    const erin = await nodeClient(s.url, "erin");
    await page.waitForFunction(() => (globalThis as unknown as { chat: Chat }).chat.state === "connected", undefined, WAIT);
    expect(await page.evaluate(() => (globalThis as unknown as { chat: Chat }).chat.transport)).toBe("stream");

    const id = await page.evaluate(() => (globalThis as unknown as { chat: Chat }).chat.send("hello from the browser"));
    await erin.received("hello from the browser");
    expect(erin.messages.find((m) => m.text === "hello from the browser")).toMatchObject({ id, from: "dora" });
    await erin.chat.send("hello from node");
    await page.waitForFunction(() => (globalThis as unknown as { received: string[] }).received.includes("hello from node"), undefined, WAIT);
    expect(await page.evaluate(() => (globalThis as unknown as { received: string[] }).received)).toEqual(["hello from the browser", "hello from node"]);
    expect(errors).toEqual([]);
  }, 30_000);

  it("is what the chat page is built on: the page loads /client.js and streams, with none of its old transport files", async () => {
    const s = await server();
    const { page, errors } = await newPage();
    const requested: string[] = [];
    page.on("request", (request) => requested.push(new URL(request.url()).pathname));
    await page.goto(s.url);
    await page.getByLabel("Your name").fill("alice");
    await page.getByRole("button", { name: "Join chat" }).click();
    await page.locator('#status[data-state="online"]').waitFor(WAIT);
    const bob = await nodeClient(s.url, "bob");
    await page.locator("#log li.notice").filter({ hasText: "bob joined #lobby" }).waitFor(WAIT);
    await bob.chat.send("from a node program");
    await page.locator("#log li.chat .text").getByText("from a node program", { exact: true }).waitFor(WAIT);
    expect(requested).toContain("/client.js");
    // Messages came by the stream: the page made no long-poll at all.
    expect(requested).toContain("/api/events");
    expect(requested).not.toContain("/api/poll");
    expect(requested.filter((p) => /\/js\/(api|poller|outbox|backoff)\.js$/.test(p))).toEqual([]);
    expect(errors).toEqual([]);
  }, 30_000);
});
