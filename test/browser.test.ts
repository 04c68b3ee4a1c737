import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createChatServer, type ChatServer } from "../src/index.js";
import { startServer, type TestServer } from "./helpers.js";

// The browser page (public/) driven in Debian's Chromium: two or three people in
// separate browser contexts (separate cookie jars), a real server on port 0.

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("./artifacts/", import.meta.url));
/** Waits on DOM events, generous for a loaded 2-core machine; none of them is a sleep. */
const WAIT = { timeout: 10_000 };

let browser: Browser;
const contexts: BrowserContext[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  // launch() gives the browser a fresh temporary profile (user-data-dir) and removes it on close.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
}, 30_000);

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

interface Person {
  page: Page;
  /** Dialogs (alert, confirm) the page tried to open: there must be none. */
  dialogs: string[];
  /** Uncaught exceptions in the page. */
  errors: string[];
}

async function openPage(url: string, viewport = { width: 1100, height: 720 }): Promise<Person> {
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "UTC", colorScheme: "light" });
  contexts.push(context);
  const page = await context.newPage();
  const person: Person = { page, dialogs: [], errors: [] };
  page.on("dialog", (dialog) => {
    person.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on("pageerror", (error) => person.errors.push(String(error)));
  await page.goto(url);
  return person;
}

/** Opens the page, joins with a name (and room) and waits until its long-poll is answered once. */
async function join(url: string, name: string, opts: { room?: string; viewport?: { width: number; height: number } } = {}): Promise<Person> {
  const person = await openPage(url, opts.viewport);
  await person.page.getByLabel("Your name").fill(name);
  if (opts.room !== undefined) await person.page.getByLabel("Room", { exact: true }).fill(opts.room);
  await person.page.getByRole("button", { name: "Join chat" }).click();
  await online(person.page);
  return person;
}

function online(page: Page): Promise<unknown> {
  return page.locator('#status[data-state="online"]').waitFor(WAIT);
}

async function say(page: Page, text: string): Promise<void> {
  const input = page.getByLabel("Message", { exact: true });
  await input.fill(text);
  await input.press("Enter");
}

/** Chat messages (not notices) in the open log whose text is exactly `text`. */
function chat(page: Page, text: string): Locator {
  return page.locator("#log li.chat").filter({ has: page.locator(".text").getByText(text, { exact: true }) });
}

/** A message delivered by the server (not a "sending…" stand-in). */
function delivered(page: Page, text: string): Locator {
  return chat(page, text).and(page.locator("li:not(.pending):not(.sent)"));
}

function notice(page: Page, text: string): Locator {
  return page.locator("#log li.notice").filter({ hasText: text });
}

/** Every id in the log once: the page never shows a message twice. */
async function expectNoDuplicates(page: Page): Promise<void> {
  const ids = await page.locator("#log li[data-id]").evaluateAll((items) => items.map((li) => (li as HTMLElement).dataset.id));
  const real = ids.filter((id) => id !== "0");
  expect(new Set(real).size).toBe(real.length);
}

/** Sends and returns how long from pressing Enter until the other page shows it (an upper bound: it includes Playwright's round trips). */
async function timedDelivery(from: Page, to: Page, text: string): Promise<number> {
  const input = from.getByLabel("Message", { exact: true });
  await input.fill(text);
  const arrived = delivered(to, text).waitFor(WAIT);
  const t0 = performance.now();
  await input.press("Enter");
  await arrived;
  return performance.now() - t0;
}

describe("browser chat page", () => {
  it("lets two people talk both ways at once, and saves a screenshot of it", async () => {
    const s = await server();
    const alice = await join(s.url, "alice");
    // Bob is on a phone: the page works at 390 px too.
    const bob = await join(s.url, "bob", { viewport: { width: 390, height: 760 } });
    // Alice's page saw Bob arrive: her long-poll works and he is in her member list.
    await notice(alice.page, "bob joined #lobby").waitFor(WAIT);
    await alice.page.locator("#members").getByRole("button", { name: "Private message to bob" }).waitFor(WAIT);

    const aliceToBob = await timedDelivery(alice.page, bob.page, "Hi Bob! Did the deploy go out?");
    const bobToAlice = await timedDelivery(bob.page, alice.page, "It did, about ten minutes ago. All green so far.");
    // Pushed to the held poll, not picked up by the next one (the page polls with a 25 s timeout):
    // 3 s leaves room for Playwright's round trips and two renderers on a busy 2-core machine.
    expect(aliceToBob).toBeLessThan(3000);
    expect(bobToAlice).toBeLessThan(3000);

    await timedDelivery(alice.page, bob.page, "Great. Any errors in the logs?");
    await timedDelivery(bob.page, alice.page, "Nothing yet. I'm keeping an eye on the dashboards.\nWill ping you if anything shows up.");
    await timedDelivery(alice.page, bob.page, "Perfect, thanks!");
    await alice.page.locator("#members").getByRole("button", { name: "Private message to bob" }).click();
    await alice.page.keyboard.type("Lunch at 1?");
    await alice.page.keyboard.press("Enter");
    await delivered(bob.page, "Lunch at 1?").waitFor(WAIT);
    await delivered(alice.page, "Lunch at 1?").waitFor(WAIT);

    // One's own messages are set apart, everyone's carry sender and time.
    await expect(delivered(alice.page, "Hi Bob! Did the deploy go out?").getAttribute("class")).resolves.toContain("own");
    await expect(delivered(bob.page, "Hi Bob! Did the deploy go out?").getAttribute("class")).resolves.not.toContain("own");
    await expect(delivered(bob.page, "Hi Bob! Did the deploy go out?").locator(".from").textContent()).resolves.toBe("alice");
    await expect(delivered(bob.page, "Hi Bob! Did the deploy go out?").locator("time").getAttribute("datetime")).resolves.toMatch(/^\d{4}-/);
    // A multi-line message keeps its line break, as text.
    await expect(delivered(alice.page, "Nothing yet. I'm keeping an eye on the dashboards.\nWill ping you if anything shows up.").count()).resolves.toBe(1);
    for (const person of [alice, bob]) {
      await expectNoDuplicates(person.page);
      expect(person.errors).toEqual([]);
    }

    await mkdir(ARTIFACTS, { recursive: true });
    await alice.page.screenshot({ path: `${ARTIFACTS}conversation.png` });
    await bob.page.screenshot({ path: `${ARTIFACTS}conversation-phone.png` });
    // At phone width the lists move into a drawer the header button opens.
    await bob.page.getByRole("button", { name: "Rooms and people" }).click();
    await bob.page.locator("#members").getByRole("button", { name: "Private message to alice" }).click();
    await expect(bob.page.getByLabel("Message", { exact: true }).inputValue()).resolves.toBe("@alice ");
  }, 60_000);

  it("delivers a private message to its target only", async () => {
    const s = await server();
    const alice = await join(s.url, "alice");
    const bob = await join(s.url, "bob");
    const carol = await join(s.url, "carol");
    await alice.page.locator("#members").getByRole("button", { name: "Private message to bob" }).waitFor(WAIT);

    await say(alice.page, "@bob the surprise party is on friday");
    const toBob = delivered(bob.page, "the surprise party is on friday");
    await toBob.waitFor(WAIT);
    await expect(toBob.getAttribute("class")).resolves.toContain("private");
    await expect(toBob.locator(".tag").textContent()).resolves.toBe("private to you");
    const aliceCopy = delivered(alice.page, "the surprise party is on friday");
    await aliceCopy.waitFor(WAIT);
    await expect(aliceCopy.locator(".tag").textContent()).resolves.toBe("private to bob");

    // Messages reach each client in id order: once Carol has the later public one, she would have had the private one.
    await say(alice.page, "see you all later");
    await delivered(carol.page, "see you all later").waitFor(WAIT);
    await expect(carol.page.locator("#log").getByText("surprise party", { exact: false }).count()).resolves.toBe(0);
    expect([...alice.errors, ...bob.errors, ...carol.errors]).toEqual([]);
  }, 60_000);

  it("shows HTML in a message as text and runs none of it", async () => {
    const s = await server();
    const alice = await join(s.url, "alice");
    const bob = await join(s.url, "bob");
    const attack = "<img src=x onerror=alert(1)>";
    await say(alice.page, attack);
    for (const person of [bob, alice]) {
      await delivered(person.page, attack).waitFor(WAIT);
      await expect(person.page.locator("#log img").count()).resolves.toBe(0);
    }
    // A later message arrives after any image would have failed to load and fired its handler.
    await say(bob.page, "<b>bold?</b>");
    await delivered(alice.page, "<b>bold?</b>").waitFor(WAIT);
    await expect(alice.page.locator("#log b").count()).resolves.toBe(0);
    expect([...alice.dialogs, ...bob.dialogs]).toEqual([]);
    expect([...alice.errors, ...bob.errors]).toEqual([]);
  }, 60_000);

  it("says clearly when a name is taken or invalid", async () => {
    const s = await server();
    await join(s.url, "alice");
    const other = await openPage(s.url);
    const error = other.page.locator("#join-error");

    await other.page.getByLabel("Your name").fill("Alice");
    await other.page.getByRole("button", { name: "Join chat" }).click();
    await expect(error.filter({ hasText: "is taken" }).textContent(WAIT)).resolves.toBe("The name “Alice” is taken. Please choose another one.");

    await other.page.getByLabel("Your name").fill("not a name!");
    await other.page.getByRole("button", { name: "Join chat" }).click();
    await expect(error.filter({ hasText: "not allowed" }).textContent(WAIT)).resolves.toContain("1–32 letters");
    await expect(other.page.getByLabel("Your name").getAttribute("aria-invalid")).resolves.toBe("true");

    await other.page.getByLabel("Your name").fill("alicia");
    await other.page.getByRole("button", { name: "Join chat" }).click();
    await online(other.page);
    await expect(other.page.locator("#me-name").textContent()).resolves.toBe("alicia");
  }, 60_000);

  it("joins and switches rooms, with member lists, room lists and unread counts", async () => {
    const s = await server();
    const alice = await join(s.url, "alice");
    const bob = await join(s.url, "bob");

    await alice.page.getByLabel("Join or create a room").fill("Dev");
    await alice.page.getByLabel("Join or create a room").press("Enter");
    await alice.page.locator("#room-title").getByText("dev", { exact: true }).waitFor(WAIT);
    await alice.page.locator('#my-rooms button[aria-current="true"][data-room="dev"]').waitFor(WAIT);

    // Bob joins by typing the command; his page switches to the room and lists who is there.
    await say(bob.page, "/join dev");
    await bob.page.locator("#room-title").getByText("dev", { exact: true }).waitFor(WAIT);
    await bob.page.locator("#members").getByRole("button", { name: "Private message to alice" }).waitFor(WAIT);
    await notice(alice.page, "bob joined #dev").waitFor(WAIT);
    await timedDelivery(alice.page, bob.page, "this one is for #dev");

    // Back in the lobby, Bob does not see #dev's talk, and #dev counts what he has not read.
    await bob.page.locator('#my-rooms button[data-room="lobby"]').click();
    await bob.page.locator("#room-title").getByText("lobby", { exact: true }).waitFor(WAIT);
    await expect(chat(bob.page, "this one is for #dev").count()).resolves.toBe(0);
    await say(alice.page, "still in dev");
    await bob.page.locator('#my-rooms button[data-room="dev"] .badge').getByText("1", { exact: true }).waitFor(WAIT);
    await bob.page.locator('#my-rooms button[data-room="dev"]').click();
    await delivered(bob.page, "still in dev").waitFor(WAIT);
    await expect(bob.page.locator('#my-rooms button[data-room="dev"] .badge').count()).resolves.toBe(0);

    // /who is answered to the asker only, for the room on screen.
    await say(bob.page, "/who");
    await bob.page.locator("#log li.system").getByText("members of dev: alice, bob", { exact: true }).waitFor(WAIT);

    // Alice leaves the lobby; Bob, looking at it, sees her go and drop from the list.
    await alice.page.getByRole("button", { name: "Leave #lobby" }).click();
    await alice.page.locator('#my-rooms button[data-room="lobby"]').waitFor({ state: "detached", ...WAIT });
    await bob.page.locator('#my-rooms button[data-room="lobby"]').click();
    await notice(bob.page, "alice left #lobby").waitFor(WAIT);
    await bob.page.locator("#members").getByRole("button", { name: "Private message to alice" }).waitFor({ state: "detached", ...WAIT });
    for (const person of [alice, bob]) {
      await expectNoDuplicates(person.page);
      expect(person.errors).toEqual([]);
    }
  }, 60_000);

  it("resumes the same session after a reload, and signs out", async () => {
    const s = await server();
    const alice = await join(s.url, "alice");
    const bob = await join(s.url, "bob");
    await timedDelivery(alice.page, bob.page, "said before the reload");

    await alice.page.reload();
    await online(alice.page);
    await expect(alice.page.locator("#me-name").textContent()).resolves.toBe("alice");
    await delivered(alice.page, "said before the reload").waitFor(WAIT);
    await timedDelivery(bob.page, alice.page, "said after the reload");
    await expect(chat(alice.page, "said before the reload").count()).resolves.toBe(1);
    // Same session: Bob never saw Alice leave.
    await expect(notice(bob.page, "alice left").count()).resolves.toBe(0);

    await alice.page.getByRole("button", { name: "Sign out" }).click();
    await notice(bob.page, "alice left #lobby").waitFor(WAIT);
    await expect(alice.page.getByLabel("Your name").inputValue()).resolves.toBe("alice");
    // The same page joins again as someone else and carries on as them alone.
    await alice.page.getByLabel("Your name").fill("alicia");
    await alice.page.getByRole("button", { name: "Join chat" }).click();
    await online(alice.page);
    await notice(bob.page, "alicia joined #lobby").waitFor(WAIT);
    await timedDelivery(bob.page, alice.page, "welcome, alicia");
    await expect(chat(alice.page, "said before the reload").count()).resolves.toBe(1);
    await timedDelivery(alice.page, bob.page, "thanks, bob");
    await expect(delivered(bob.page, "thanks, bob").locator(".from").textContent()).resolves.toBe("alicia");
    for (const person of [alice, bob]) {
      await expectNoDuplicates(person.page);
      expect(person.errors).toEqual([]);
    }
  }, 60_000);

  it("recovers from a server restart on the same port with nothing lost or shown twice", async () => {
    const first = await startServer();
    let current: ChatServer = first.chat;
    closers.push(() => current.close());
    const alice = await join(first.url, "alice");
    const bob = await join(first.url, "bob");
    await notice(alice.page, "bob joined #lobby").waitFor(WAIT);
    await timedDelivery(alice.page, bob.page, "before the restart, from alice");
    await timedDelivery(bob.page, alice.page, "before the restart, from bob");

    await first.close();
    // Both pages notice and say so.
    for (const person of [alice, bob]) {
      await person.page.locator('#status[data-state="reconnecting"]').waitFor(WAIT);
      await person.page.locator("#banner").getByText("Reconnecting", { exact: false }).waitFor(WAIT);
    }
    // Written while the server is down: kept, shown as sending, sent once it is back.
    await say(alice.page, "written while the server was down");
    await alice.page.locator("#log li.pending").getByText("written while the server was down").waitFor(WAIT);

    current = createChatServer({ pollTimeoutMs: 1000 });
    await current.listen(first.port, "127.0.0.1");

    for (const person of [alice, bob]) await online(person.page);
    await delivered(bob.page, "written while the server was down").waitFor(WAIT);
    await delivered(alice.page, "written while the server was down").waitFor(WAIT);
    await timedDelivery(bob.page, alice.page, "after the restart, from bob");
    await timedDelivery(alice.page, bob.page, "after the restart, from alice");

    const texts = [
      "before the restart, from alice",
      "before the restart, from bob",
      "written while the server was down",
      "after the restart, from bob",
      "after the restart, from alice",
    ];
    for (const person of [alice, bob]) {
      for (const text of texts) await expect(chat(person.page, text).count()).resolves.toBe(1);
      // Where the page lost track, it says so.
      await expect(person.page.locator("#log li.gap").count()).resolves.toBeGreaterThanOrEqual(1);
      await expect(person.page.locator("#log li.pending, #log li.sent, #log li.failed").count()).resolves.toBe(0);
      await expectNoDuplicates(person.page);
      expect(person.errors).toEqual([]);
    }
    // The order survived: what came before the restart is above what came after.
    const order = await alice.page.locator("#log li.chat .text").allTextContents();
    expect(order).toEqual(texts);
  }, 60_000);

  it("says so when, after a restart, its name has been taken meanwhile", async () => {
    const first = await startServer();
    let current: ChatServer = first.chat;
    closers.push(() => current.close());
    const bob = await join(first.url, "bob");
    await first.close();
    await bob.page.locator('#status[data-state="reconnecting"]').waitFor(WAIT);
    current = createChatServer({ pollTimeoutMs: 1000 });
    // Someone else is "bob" on the new server before the page comes back.
    current.hub.joinWithToken("bob", "lobby");
    await current.listen(first.port, "127.0.0.1");
    await bob.page.locator("#join-error").filter({ hasText: "now used by someone else" }).waitFor(WAIT);
    await expect(bob.page.getByLabel("Your name").inputValue()).resolves.toBe("bob");
    expect(bob.errors).toEqual([]);
  }, 60_000);
});
