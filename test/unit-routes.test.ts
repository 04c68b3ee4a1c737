import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Query } from "../src/http/query.js";
import { findRoute, NOT_FOUND_LABEL, ROUTES } from "../src/http/routes.js";

function labelOf(path: string, query = ""): string {
  return findRoute(path, new Query(query))?.route.label ?? NOT_FOUND_LABEL;
}

describe("the route table", () => {
  it("labels every request by its route, never by the raw path", () => {
    expect(labelOf("/", "name=a&message=hi")).toBe("seed_post");
    expect(labelOf("/", "message=hi")).toBe("seed_post");
    expect(labelOf("/", "name=a")).toBe("seed_poll");
    expect(labelOf("/")).toBe("static");
    expect(labelOf("/app.js")).toBe("static");
    expect(labelOf("/client.js")).toBe("client");
    expect(labelOf("/api")).toBe("static");
    expect(labelOf("/api/join")).toBe("api_join");
    expect(labelOf("/api/messages")).toBe("api_messages");
    expect(labelOf("/api/poll")).toBe("api_poll");
    expect(labelOf("/api/events")).toBe("api_events");
    expect(labelOf("/api/leave")).toBe("api_leave");
    expect(labelOf("/api/rooms")).toBe("api_rooms");
    expect(labelOf("/api/rooms/den")).toBe("api_room");
    expect(labelOf("/api/rooms/den/messages")).toBe("api_room_messages");
    expect(labelOf("/healthz")).toBe("healthz");
    expect(labelOf("/metrics")).toBe("metrics");
    for (const path of ["/api/", "/api/nope", "/api/rooms/", "/api/rooms/a/b", "/api/join/x"]) expect(labelOf(path), path).toBe("not_found");
  });

  it("gives a route's path captures, raw, to its handler", () => {
    expect(findRoute("/api/rooms/a%20b/messages", new Query(""))?.captures).toEqual(["a%20b"]);
    expect(findRoute("/api/poll", new Query(""))?.captures).toEqual([]);
  });

  it("answers a wrong method with the route's own Allow", () => {
    const allow = new Map(ROUTES.map((r) => [r.label, r.allow]));
    expect(allow.get("seed_post")).toBe("GET");
    expect(allow.get("seed_poll")).toBe("GET, HEAD");
    expect(allow.get("api_join")).toBe("POST");
    expect(allow.get("api_poll")).toBe("GET");
    expect(allow.get("healthz")).toBe("GET, HEAD");
    expect(allow.get("static")).toBe("GET, HEAD");
  });

  it("has one entry per label, and the README lists every label", () => {
    const labels = ROUTES.map((r) => r.label);
    expect(new Set(labels).size).toBe(labels.length);
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const listed = readme.slice(readme.indexOf("`route` is a fixed label")).split("\n\n")[0]!;
    const named = [...listed.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).filter((l) => l !== "route" && l !== "status" && l !== "aborted");
    expect(named.sort()).toEqual([...labels, NOT_FOUND_LABEL, "bad_target"].sort());
  });
});
