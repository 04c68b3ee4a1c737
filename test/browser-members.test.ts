import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, startServer, type TestServer } from "./helpers.js";

// The chat page (public/) in Debian's Chromium, in a room whose members take more than one page
// (README, the JSON API): its member list follows the pages after the join's answer.

const CHROMIUM = "/usr/bin/chromium";
/** Waits on DOM events, generous for a loaded 2-core machine; none of them is a sleep. */
const WAIT = { timeout: 15_000 };

let browser: Browser;
const contexts: BrowserContext[] = [];
const closers: (() => Promise<void>)[] = [];

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
  // No join notices: 1,100 of them would only slow the page down.
  const s = await startServer({ presenceLimit: 0 });
  closers.push(() => s.close());
  return s;
}

describe("the page's member list", () => {
  it("lists every member of a room past one page, fetching the pages after the join's answer", async () => {
    const s = await server();
    const name = (i: number): string => `m${String(i).padStart(4, "0")}`;
    // The members are made in the hub (quicker than 1,100 joins); the page talks to the server as any client.
    const hub = s.chat.hub;
    for (let i = 0; i < 1100; i++) hub.join(hub.sessionForName(name(i), {}), "big");

    const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, locale: "en-GB", timezoneId: "UTC" });
    contexts.push(context);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    const memberPages: string[] = [];
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname === "/api/rooms/big") memberPages.push(url.search);
    });
    await page.goto(s.url);
    await page.getByLabel("Your name").fill("zed");
    await page.getByRole("button", { name: "Join chat" }).click();
    await page.locator('#status[data-state="online"]').waitFor(WAIT);

    await page.getByLabel("Join or create a room").fill("big");
    await page.getByLabel("Join or create a room").press("Enter");
    await page.locator("#room-title").getByText("big", { exact: true }).waitFor(WAIT);
    // Every member: the join's answer named the first 100, the pages after it the rest.
    await page.locator("#member-count").getByText("(1101)", { exact: true }).waitFor(WAIT);
    await page.locator("#members").getByRole("button", { name: `Private message to ${name(1099)}` }).waitFor(WAIT);
    expect(await page.locator("#members li").count()).toBe(1101);
    expect(memberPages).toEqual([`?limit=1000&after=${name(99)}`, `?limit=1000&after=${name(1099)}`]);
    expect(errors).toEqual([]);
  }, 60_000);
});
