import { describe, expect, it } from "vitest";
import { Query, splitTarget } from "../src/http/query.js";
import { codeOf } from "./helpers.js";


describe("Query", () => {
  it("decodes percent-escapes and + as a space", () => {
    const q = new Query("name=al%20ice&message=hi+there%21&room=lobby");
    expect(q.get("name")).toBe("al ice");
    expect(q.get("message")).toBe("hi there!");
    expect(q.get("room")).toBe("lobby");
    expect(q.get("missing")).toBeUndefined();
  });

  it("keeps %2B as a plus and decodes UTF-8", () => {
    const q = new Query("message=1%2B1%3D2&emoji=%F0%9F%98%80");
    expect(q.get("message")).toBe("1+1=2");
    expect(q.get("emoji")).toBe("😀");
  });

  it("treats a key without = as present and empty, and ignores empty parts", () => {
    const q = new Query("&&name&timeout=&");
    expect(q.has("name")).toBe(true);
    expect(q.get("name")).toBe("");
    expect(q.get("timeout")).toBe("");
    expect(q.has("")).toBe(false);
  });

  it("keeps everything after the first = in the value", () => {
    expect(new Query("message=a=b=c").get("message")).toBe("a=b=c");
  });

  it("refuses a parameter given twice only when it is read", () => {
    const q = new Query("name=a&name=b&_=1&_=2");
    expect(codeOf(() => q.get("name"))).toBe("repeated_parameter");
    expect(q.has("name")).toBe(true);
    expect(codeOf(() => q.get("other"))).toBeUndefined();
  });

  it("refuses bad escapes and invalid UTF-8 instead of guessing", () => {
    for (const raw of ["name=%", "name=%zz", "name=%C3%28", "name=%E2%82", "%FF=1", "name=%ED%A0%80"]) {
      expect(codeOf(() => new Query(raw)), raw).toBe("bad_encoding");
    }
  });

  it("keeps __proto__ and constructor as plain keys", () => {
    const q = new Query("__proto__=x&constructor=y&toString=z");
    expect(q.get("__proto__")).toBe("x");
    expect(q.get("constructor")).toBe("y");
    expect(q.get("toString")).toBe("z");
    expect(q.has("hasOwnProperty")).toBe(false);
    expect(q.get("valueOf")).toBeUndefined();
    expect(({} as Record<string, unknown>)["x"]).toBeUndefined();
  });
});

describe("Query parameters with and without values", () => {
  it("pairs each key with its own value, wherever the next = stands", () => {
    const q = new Query("a=1&b&c=3&&d=4=5&e=&" + "x&".repeat(1000) + "y=last");
    expect([q.get("a"), q.get("b"), q.get("c"), q.get("d"), q.get("e"), q.get("y"), q.get("z")]).toEqual(["1", "", "3", "4=5", "", "last", undefined]);
    expect(() => q.get("x")).toThrow(/more than once/);
  });
});

describe("splitTarget", () => {
  it("splits the path from the query and keeps the path's raw escapes", () => {
    const t = splitTarget("/api/rooms/a%2Fb?x=1");
    expect(t.path).toBe("/api/rooms/a%2Fb");
    expect(t.query.get("x")).toBe("1");
  });

  it("answers / with an empty query for no target or no ?", () => {
    expect(splitTarget(undefined).path).toBe("/");
    const t = splitTarget("/healthz");
    expect(t.path).toBe("/healthz");
    expect(t.query.has("x")).toBe(false);
  });

  it("splits at the first ? only", () => {
    const t = splitTarget("/?message=why?&name=a");
    expect(t.path).toBe("/");
    expect(t.query.get("message")).toBe("why?");
  });
});
