import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { buildAppWithoutCoordinator, errorOf, TRADE_ID, type TestApp } from "../_test/app.js";
import { signToken } from "../_test/auth.js";

// What needs no coordinator: auth, ids, logging, the OpenAPI entry. The stream itself (events,
// resume, keep-alive, limits, expiry, failures, shutdown, a client leaving) is tested against the
// real gateway and coordinator processes in test/src/e2e/sse.test.ts.
const EVENTS = `/api/v1/instant-trade/${TRADE_ID}/events`;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const open = async (t: TestApp, opts: { token?: string; headers?: Record<string, string>; path?: string } = {}) =>
  t.app.request(opts.path ?? EVENTS, {
    headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers },
  });

describe("GET …/{trade_id}/events without a coordinator", () => {
  let t: TestApp;
  const setup = async (opts: { logger?: pino.Logger } = {}) => {
    t = await buildAppWithoutCoordinator({}, opts);
    cleanups.push(() => t.close());
  };

  it("is 401 without a token, with a bad ?access_token, and with a token in both places", async () => {
    await setup();
    const none = await t.app.request(EVENTS);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="ponte"');
    expect((await errorOf(none)).code).toBe("UNAUTHENTICATED");

    const expired = await signToken({ sub: "u1", expiresIn: -60 });
    const forged = await signToken({ sub: "u1", secret: "another-secret-0123456789abcdef-xyz" });
    for (const q of ["", "garbage", "a%20b", expired, forged]) {
      const res = await t.app.request(`${EVENTS}?access_token=${q}`);
      expect({ q, status: res.status, code: (await errorOf(res)).code }).toEqual({ q, status: 401, code: "UNAUTHENTICATED" });
    }

    const token = await signToken({ sub: "u1" });
    const both = await t.app.request(`${EVENTS}?access_token=${token}`, { headers: { authorization: `Bearer ${token}` } });
    expect(both.status).toBe(401);
    expect((await errorOf(both)).message).toContain("not both");
  });

  it("takes the token from ?access_token (or the header): past auth, GetTrade finds the coordinator down", async () => {
    await setup();
    const token = await signToken({ sub: "u1" });
    for (const res of [await t.app.request(`${EVENTS}?access_token=${token}`), await open(t, { token })]) {
      expect(res.status).toBe(503);
      expect((await errorOf(res)).code).toBe("COORDINATOR_UNAVAILABLE");
    }
  });

  it("is 400 INVALID_ID for a malformed trade id", async () => {
    await setup();
    const token = await signToken({ sub: "u1" });
    for (const id of ["trd_bad", "qte_06h2d176hjnn0qayzpmjs9vyew", "x"]) {
      const res = await t.app.request(`/api/v1/instant-trade/${id}/events?access_token=${token}`);
      expect(res.status).toBe(400);
      expect((await errorOf(res)).code).toBe("INVALID_ID");
    }
  });

  it("never logs the token or the query string", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    await setup({ logger: pino({ level: "trace" }, sink) });
    const token = await signToken({ sub: "u1" });
    await t.app.request(`${EVENTS}?access_token=${token}`);
    await t.app.request(`${EVENTS}?access_token=${token}x`);
    await t.app.request(`/api/v1/instant-trade/trd_bad/events?access_token=${token}`);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const all = lines.join("");
    expect(all).not.toContain(token.split(".")[2]!);
    expect(all).not.toContain("access_token");
    expect(all).toContain('"route":"/api/v1/instant-trade/:trade_id/events"');
  });

  it("is in /openapi.json as text/event-stream, with access_token and Last-Event-ID", async () => {
    await setup();
    const doc = (await (await t.app.request("/openapi.json")).json()) as {
      paths: Record<string, { get?: { responses: Record<string, { content?: Record<string, unknown> }>; parameters: { name: string; in: string }[]; security: unknown } }>;
    };
    const op = doc.paths["/api/v1/instant-trade/{trade_id}/events"]?.get;
    expect(op).toBeDefined();
    expect(Object.keys(op!.responses["200"]!.content!)).toEqual(["text/event-stream"]);
    expect(Object.keys(op!.responses).sort()).toEqual(["200", "204", "400", "401", "404", "500", "503"]);
    expect(op!.parameters.map((p) => `${p.in}:${p.name}`).sort()).toEqual(["header:Last-Event-ID", "path:trade_id", "query:access_token"]);
    expect(op!.security).toEqual([{ bearer: [] }]);
  });
});
