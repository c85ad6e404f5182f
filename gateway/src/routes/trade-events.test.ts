import { request as httpRequest } from "node:http";
import { Writable } from "node:stream";
import { PonteError } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { buildAppWith, buildAppWithoutCoordinator, errorOf, TRADE_ID, type TestApp } from "../_test/app.js";
import { signToken } from "../_test/auth.js";
import { stubCoordinator, tradeJson } from "../_test/coordinator.js";
import { readSse } from "../_test/sse.js";
import type { Coordinator } from "../coordinator/index.js";
import type { TradeJson } from "../schemas.js";
import { serveApp, type RunningServer } from "../server.js";

const EVENTS = `/api/v1/instant-trade/${TRADE_ID}/events`;
// Fast polling so a test sees several rounds in milliseconds.
const FAST = { SSE_POLL_MS: "10", SSE_KEEPALIVE_MS: "60000" };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const streamsGauge = async (t: TestApp) => (await t.registry.getSingleMetric("ponte_gateway_sse_streams")!.get()).values[0]?.value ?? 0;

interface Scripted {
  /** What GetTrade answers next: a trade, or an error it throws. */
  current: TradeJson | Error;
  calls: { tradeId: string; userId: string }[];
  coordinator: Coordinator;
}

/** A coordinator whose GetTrade answers `current` (changed by the test) and records each call. */
function scripted(initial: TradeJson | Error): Scripted {
  const s: Scripted = { current: initial, calls: [], coordinator: stubCoordinator({}) };
  s.coordinator = stubCoordinator({
    getTrade: async (r): Promise<TradeJson> => {
      s.calls.push(r);
      if (s.current instanceof Error) throw s.current;
      return s.current;
    },
  });
  return s;
}

function appWith(s: Scripted, env: Record<string, string> = {}, shutdownSignal?: AbortSignal): TestApp {
  const t = buildAppWith(s.coordinator, { env: { ...FAST, ...env }, ...(shutdownSignal ? { shutdownSignal } : {}) });
  cleanups.push(() => t.close());
  return t;
}

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

describe("GET …/{trade_id}/events with GetTrade answering", () => {
  it("sends the trade on connect and at each new version (id = version), then ends after a final status", async () => {
    const s = scripted(tradeJson({ version: 1 }));
    const t = appWith(s);
    const res = await open(t, { token: await signToken({ sub: "u1" }) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const sse = readSse(res);
    const first = await sse.next();
    expect(first).toEqual({ event: "trade", id: "1", data: JSON.stringify(tradeJson({ version: 1 })) });

    // Unchanged versions send nothing; a new version is sent once.
    const before = s.calls.length;
    await eventually(() => expect(s.calls.length).toBeGreaterThan(before + 3));
    s.current = tradeJson({ version: 2, status: "DEPOSIT_DETECTED", received_amount: "100.5" });
    expect(await sse.next()).toMatchObject({ event: "trade", id: "2" });
    s.current = tradeJson({ version: 3, status: "CANCELLED" });
    const rest = await sse.rest();
    expect(rest).toEqual([{ event: "trade", id: "3", data: JSON.stringify(tradeJson({ version: 3, status: "CANCELLED" })) }]);
    expect(s.calls.every((c) => c.tradeId === TRADE_ID && c.userId === "u1")).toBe(true);
    await eventually(async () => expect(await streamsGauge(t)).toBe(0));
  });

  it("a final trade is sent and the stream ends at once; an admin reads any trade", async () => {
    const s = scripted(tradeJson({ version: 7, status: "COMPLETED", payout_status: "SETTLED", payout_end_to_end_id: "E123" }));
    const t = appWith(s);
    const frames = await readSse(await open(t, { token: await signToken({ sub: "ops", role: "admin" }) })).rest();
    expect(frames.map((f) => [f.event, f.id])).toEqual([["trade", "7"]]);
    expect(JSON.parse(frames[0]!.data!)).toMatchObject({ payout_status: "SETTLED", payout_end_to_end_id: "E123" });
    expect(s.calls).toEqual([{ tradeId: TRADE_ID, userId: "" }]);
  });

  it("Last-Event-ID resumes without repeating; at the final version it is 204", async () => {
    const s = scripted(tradeJson({ version: 4, status: "PAYOUT_PENDING" }));
    const t = appWith(s);
    const token = await signToken({ sub: "u1" });
    const sse = readSse(await open(t, { token, headers: { "last-event-id": "4" } }));
    const before = s.calls.length;
    await eventually(() => expect(s.calls.length).toBeGreaterThan(before + 3));
    s.current = tradeJson({ version: 5, status: "COMPLETED" });
    expect((await sse.rest()).map((f) => f.id)).toEqual(["5"]);

    const done = await open(t, { token, headers: { "last-event-id": "5" } });
    expect(done.status).toBe(204);
    expect(await done.text()).toBe("");
    // An unusable Last-Event-ID is a fresh start.
    expect((await readSse(await open(t, { token, headers: { "last-event-id": "abc" } })).rest()).map((f) => f.id)).toEqual(["5"]);
    await eventually(async () => expect(await streamsGauge(t)).toBe(0));
  });

  it("sends `: keep-alive` comments while nothing changes", async () => {
    const s = scripted(tradeJson());
    const t = appWith(s, { SSE_KEEPALIVE_MS: "40" });
    const sse = readSse(await open(t, { token: await signToken({ sub: "u1" }) }));
    expect((await sse.next())?.event).toBe("trade");
    expect(await sse.next()).toEqual({ comment: "keep-alive" });
    expect(await sse.next()).toEqual({ comment: "keep-alive" });
    await sse.cancel();
  });

  it("the coordinator failing mid-stream is an `event: error` with the error body, then the end", async () => {
    const s = scripted(tradeJson());
    const t = appWith(s);
    const sse = readSse(await open(t, { token: await signToken({ sub: "u1" }) }));
    expect((await sse.next())?.event).toBe("trade");
    s.current = new PonteError("COORDINATOR_UNAVAILABLE", "the coordinator did not answer in time");
    const rest = await sse.rest();
    expect(rest).toHaveLength(1);
    expect(rest[0]!.event).toBe("error");
    expect(JSON.parse(rest[0]!.data!)).toEqual({
      error: { code: "COORDINATOR_UNAVAILABLE", message: "the coordinator did not answer in time", details: {} },
    });
    await eventually(async () => expect(await streamsGauge(t)).toBe(0));
  });

  it("a bug mid-stream says only INTERNAL to the client", async () => {
    const s = scripted(tradeJson());
    const t = appWith(s);
    const sse = readSse(await open(t, { token: await signToken({ sub: "u1" }) }));
    await sse.next();
    s.current = new TypeError("secret internals");
    const [frame] = await sse.rest();
    expect(frame).toMatchObject({ event: "error" });
    expect(JSON.parse(frame!.data!)).toEqual({ error: { code: "INTERNAL", message: "internal error", details: {} } });
  });

  it("another user's trade (or none) is 404 before any stream, and holds no slot", async () => {
    const s = scripted(new PonteError("TRADE_NOT_FOUND", "no such trade"));
    const t = appWith(s, { SSE_MAX_STREAMS: "1" });
    for (let i = 0; i < 3; i++) {
      const res = await open(t, { token: await signToken({ sub: "u2" }) });
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toContain("application/json");
      expect((await errorOf(res)).code).toBe("TRADE_NOT_FOUND");
    }
    expect(await streamsGauge(t)).toBe(0);
  });

  it("refuses streams beyond SSE_MAX_STREAMS with 503 and Retry-After; a closed one frees its slot", async () => {
    const s = scripted(tradeJson());
    const t = appWith(s, { SSE_MAX_STREAMS: "2" });
    const token = await signToken({ sub: "u1" });
    const a = readSse(await open(t, { token }));
    const b = readSse(await open(t, { token }));
    await a.next();
    await b.next();
    const calls = s.calls.length;
    const refused = await open(t, { token });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(await errorOf(refused)).toMatchObject({ code: "UNAVAILABLE", details: { limit: 2 } });
    // Refused before asking the coordinator anything (the running streams' polls aside).
    expect(s.calls.slice(calls).length).toBeLessThan(20);
    const metrics = await t.app.request("/metrics");
    expect(await metrics.text()).toMatch(/ponte_gateway_sse_streams_refused_total\{[^}]*\} 1\n/);

    await a.cancel();
    await eventually(async () => expect(await streamsGauge(t)).toBe(1));
    const c = await open(t, { token });
    expect(c.status).toBe(200);
    await readSse(c).cancel();
    await b.cancel();
    await eventually(async () => expect(await streamsGauge(t)).toBe(0));
  });

  it("ends the stream with UNAUTHENTICATED when the token expires", async () => {
    const s = scripted(tradeJson());
    const t = appWith(s, { JWT_CLOCK_TOLERANCE_S: "0" });
    const sse = readSse(await open(t, { token: await signToken({ sub: "u1", expiresIn: 1 }) }));
    expect((await sse.next())?.event).toBe("trade");
    const [frame] = await sse.rest();
    expect(frame?.event).toBe("error");
    expect(JSON.parse(frame!.data!)).toMatchObject({ error: { code: "UNAUTHENTICATED", message: "the token has expired" } });
  });

  it("ends open streams at shutdown", async () => {
    const s = scripted(tradeJson());
    const shutdown = new AbortController();
    const t = appWith(s, {}, shutdown.signal);
    const sse = readSse(await open(t, { token: await signToken({ sub: "u1" }) }));
    await sse.next();
    shutdown.abort();
    expect(await sse.rest()).toEqual([]);
    expect(await streamsGauge(t)).toBe(0);
  });
});

describe("a client that disconnects", () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    vi.useRealTimers();
    await server?.close();
    server = undefined;
  });

  it("stops its poller: no more GetTrade, the slot freed, no timer left", async () => {
    // Only the global setTimeout is faked: the poller's sleep is then countable and nothing else is.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const s = scripted(tradeJson());
    const t = appWith(s, { SSE_POLL_MS: "500" });
    server = await serveApp(t.app, { port: 0, host: "127.0.0.1" });
    const token = await signToken({ sub: "u1" });

    const req = httpRequest({ host: "127.0.0.1", port: server.port, path: EVENTS, agent: false, headers: { authorization: `Bearer ${token}` } });
    cleanups.push(() => void req.destroy());
    const firstChunk = new Promise<string>((resolve, reject) => {
      req.on("response", (res) => {
        res.setEncoding("utf8");
        res.once("data", (d: string) => resolve(`${res.statusCode} ${d}`));
      });
      req.on("error", reject);
    });
    req.end();
    expect(await firstChunk).toMatch(/^200 event: trade\n/);
    await eventually(() => expect(vi.getTimerCount()).toBe(1)); // the poller, asleep
    await vi.advanceTimersByTimeAsync(1_600);
    expect(s.calls.length).toBe(1 + 3); // the opening GetTrade and one per 500 ms
    expect(await streamsGauge(t)).toBe(1);

    req.on("error", () => {}); // the reset we cause
    req.destroy();
    await eventually(async () => expect(await streamsGauge(t)).toBe(0));
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.calls.length).toBe(4);
  });
});
