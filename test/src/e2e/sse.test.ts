import { eventually } from "@ponte/common/testing";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { signJwt } from "../harness/jwt.js";
import { openSse, type SseFrame, type SseStream } from "../harness/sse.js";
import { evmAddresses, JWT_SECRET, startStack, stockAddressPool, type Stack } from "../harness/stack.js";

// The live trade status (Server-Sent Events) end to end: the gateway process polling the real
// coordinator process. Small limits and fast timers so each behaviour shows in a second or two.
let s: Stack;
const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";
const MAX_STREAMS = 2;
const KEEPALIVE_MS = 300;
const POLL_MS = 100;

beforeAll(async () => {
  s = await startStack({
    gatewayEnv: {
      SSE_MAX_STREAMS: String(MAX_STREAMS),
      SSE_KEEPALIVE_MS: String(KEEPALIVE_MS),
      SSE_POLL_MS: String(POLL_MS),
      // Token expiry ends a stream at exp itself, not 5 s later.
      JWT_CLOCK_TOLERANCE_S: "0",
    },
  });
  await stockAddressPool(s, "anvil", evmAddresses(20));
});
afterAll(async () => {
  s?.coordinator.child.kill("SIGCONT");
  await s?.stop();
});

async function newTrade(user: string) {
  const token = s.token(user);
  const q = await s.api("/api/v1/instant-trade/quote", { token, body: { symbol: "USDT", network: "anvil", crypto_amount: "100.5" } });
  expect(q.status).toBe(200);
  const c = await s.api("/api/v1/instant-trade/create", {
    token,
    body: { quote_id: q.body.quote_id, refund_address: refund },
    headers: { "idempotency-key": `k-${q.body.quote_id}` },
  });
  expect(c.status).toBe(201);
  return c.body as { id: string; status: string; version: number };
}

const eventsUrl = (id: string, token?: string) =>
  `${s.gatewayUrl}/api/v1/instant-trade/${id}/events${token ? `?access_token=${encodeURIComponent(token)}` : ""}`;
/** The trades in `event: trade` frames, each with the frame's id as event_id. */
const trades = (frames: (SseFrame | null)[]) =>
  frames
    .filter((f): f is SseFrame => f?.event === "trade")
    .map((f) => ({ event_id: f.id, ...(JSON.parse(f.data!) as { id: string; user_id: string; status: string; version: number }) }));
/** Frames other than `: keep-alive` comments (which may come between any two with a 300 ms keep-alive). */
const events = (frames: SseFrame[]) => frames.filter((f) => f.comment !== "keep-alive");

// Streams a failed assertion left open would hold gateway slots (there are only two) into the next test.
const opened: SseStream[] = [];
afterEach(async () => {
  for (const st of opened.splice(0)) await st.close();
  if (s.gateway.exitCode === null) await eventually(async () => expect(await gatewayStreams()).toBe(0));
});
async function follow(url: string, headers: Record<string, string> = {}) {
  const r = await openSse(url, headers);
  opened.push(r.stream);
  return r;
}

describe("GET /api/v1/instant-trade/{id}/events", () => {
  it("delivers PENDING, then CANCELLED when the user cancels, then ends", async () => {
    const t = await newTrade("u-sse-cancel");
    const { res, stream } = await follow(eventsUrl(t.id, s.token("u-sse-cancel")));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const first = await stream.nextEvent();
    // The same JSON as GET /{trade_id}, with id = version.
    const get = await s.api(`/api/v1/instant-trade/${t.id}`, { token: s.token("u-sse-cancel") });
    expect(first).toEqual({ event: "trade", id: String(get.body.version), data: JSON.stringify(get.body) });
    expect(get.body.status).toBe("PENDING");

    const cancel = await s.api(`/api/v1/instant-trade/${t.id}/cancel`, { token: s.token("u-sse-cancel"), method: "POST", body: { reason: "changed my mind" } });
    expect(cancel.status).toBe(200);
    const rest = events(await stream.rest());
    expect(rest.every((f) => f.event === "trade")).toBe(true);
    expect(trades(rest).map((x) => [x.status, x.event_id])).toEqual([["CANCELLED", String(cancel.body.version)]]);
    expect(cancel.body.version).toBeGreaterThan(get.body.version);
  });

  it("sends the trade, then only `: keep-alive` comments while its version stands, each new version once (id = version), and ends after a final status", async () => {
    const user = "u-sse-versions";
    const t = await newTrade(user);
    const { res, stream } = await follow(eventsUrl(t.id, s.token(user)));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(trades([await stream.next()]).map((x) => [x.status, x.event_id])).toEqual([["PENDING", String(t.version)]]);

    // Polls answering the same version send nothing; after SSE_KEEPALIVE_MS idle, a comment.
    const idle = Date.now();
    expect(await stream.next(3_000)).toEqual({ comment: "keep-alive" });
    expect(await stream.next(3_000)).toEqual({ comment: "keep-alive" });
    expect(Date.now() - idle).toBeGreaterThanOrEqual(2 * KEEPALIVE_MS - 50);

    // What an agent would report; a real transition always bumps the version (the stream's change detector).
    await s.sql`UPDATE instant_trades SET status = 'DEPOSIT_DETECTED', received_amount = crypto_amount, version = version + 1, updated_at = now() WHERE id = ${t.id}`;
    const between: SseFrame[] = [];
    let next = await stream.next();
    for (; next?.comment !== undefined; next = await stream.next()) between.push(next);
    expect(between.every((f) => f.comment === "keep-alive")).toBe(true);
    const get = await s.api(`/api/v1/instant-trade/${t.id}`, { token: s.token(user) });
    expect(get.body).toMatchObject({ status: "DEPOSIT_DETECTED", received_amount: "100.5", version: t.version + 1 });
    expect(next).toEqual({ event: "trade", id: String(t.version + 1), data: JSON.stringify(get.body) });

    // A final status (here the refund having gone out) is the last event.
    await s.sql`UPDATE instant_trades SET status = 'REFUNDED', version = version + 1, updated_at = now() WHERE id = ${t.id}`;
    const rest = events(await stream.rest());
    expect(rest.map((f) => [f.event, f.id])).toEqual([["trade", String(t.version + 2)]]);
    expect(trades(rest)[0]).toMatchObject({ status: "REFUNDED", user_id: user });
    expect(await gatewayStreams()).toBe(0);
  });

  it("takes the Authorization header too; resuming at the final version is 204", async () => {
    const t = await newTrade("u-sse-header");
    const cancel = await s.api(`/api/v1/instant-trade/${t.id}/cancel`, { token: s.token("u-sse-header"), method: "POST" });
    expect(cancel.status).toBe(200);
    const { res, stream } = await follow(eventsUrl(t.id), { authorization: `Bearer ${s.token("u-sse-header")}` });
    expect(res.status).toBe(200);
    expect(trades(await stream.rest()).map((x) => x.status)).toEqual(["CANCELLED"]);

    const again = await fetch(eventsUrl(t.id, s.token("u-sse-header")), { headers: { "last-event-id": String(cancel.body.version) } });
    expect(again.status).toBe(204);
  });

  it("Last-Event-ID resumes without repeating; at the final version it is 204; an unusable one starts afresh", async () => {
    const user = "u-sse-resume";
    const t = await newTrade(user);
    const { res, stream } = await follow(eventsUrl(t.id, s.token(user)), { "last-event-id": String(t.version) });
    expect(res.status).toBe(200);
    // The version already seen is not sent again: the first frame is the idle stream's keep-alive.
    expect(await stream.next(3_000)).toEqual({ comment: "keep-alive" });
    const cancel = await s.api(`/api/v1/instant-trade/${t.id}/cancel`, { token: s.token(user), method: "POST" });
    expect(cancel.status).toBe(200);
    const rest = events(await stream.rest());
    expect(rest.map((f) => [f.event, f.id])).toEqual([["trade", String(cancel.body.version)]]);

    const done = await fetch(eventsUrl(t.id, s.token(user)), { headers: { "last-event-id": String(cancel.body.version) } });
    expect(done.status).toBe(204);
    expect(await done.text()).toBe("");
    const fresh = await follow(eventsUrl(t.id, s.token(user)), { "last-event-id": "abc" });
    expect(fresh.res.status).toBe(200);
    expect(events(await fresh.stream.rest()).map((f) => [f.event, f.id])).toEqual([["trade", String(cancel.body.version)]]);
  });

  it("another user's trade is 404 before any stream; no token is 401; an admin follows anyone's", async () => {
    const t = await newTrade("u-sse-owner");
    const other = await fetch(eventsUrl(t.id, s.token("u-sse-intruder")));
    expect(other.status).toBe(404);
    expect(other.headers.get("content-type")).toContain("application/json");
    expect(((await other.json()) as { error: { code: string } }).error.code).toMatch(/NOT_FOUND$/);
    const anonymous = await fetch(eventsUrl(t.id));
    expect(anonymous.status).toBe(401);
    const bad = await fetch(`${s.gatewayUrl}/api/v1/instant-trade/trd_nope/events?access_token=${s.token("u-sse-owner")}`);
    expect(bad.status).toBe(400);

    const { res, stream } = await follow(eventsUrl(t.id, s.adminToken("ops-sse")));
    expect(res.status).toBe(200);
    expect(trades([await stream.nextEvent()])).toMatchObject([{ status: "PENDING", user_id: "u-sse-owner" }]);
    await stream.close();
  });

  it("a 404 (another user's trade) holds no slot", async () => {
    const t = await newTrade("u-sse-slots");
    for (let i = 0; i < MAX_STREAMS + 1; i++) {
      const res = await fetch(eventsUrl(t.id, s.token("u-sse-someone-else")));
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("TRADE_NOT_FOUND");
    }
    expect(await gatewayStreams()).toBe(0);
    // Every slot is still there for the owner.
    const streams = await Promise.all(Array.from({ length: MAX_STREAMS }, () => follow(eventsUrl(t.id, s.token("u-sse-slots")))));
    expect(streams.map((r) => r.res.status)).toEqual(Array(MAX_STREAMS).fill(200));
    for (const r of streams) expect((await r.stream.nextEvent())?.event).toBe("trade");
  });

  it("refuses streams beyond SSE_MAX_STREAMS with 503 and Retry-After, without asking the coordinator; a closed one frees its slot", async () => {
    const user = "u-sse-limit";
    const t = await newTrade(user);
    const open = () => follow(eventsUrl(t.id, s.token(user)));
    const [a, b] = [await open(), await open()];
    for (const r of [a, b]) expect((await r.stream.nextEvent())?.event).toBe("trade");
    expect(await gatewayStreams()).toBe(MAX_STREAMS);
    const refusedBefore = await gatewayRefused();

    // With the coordinator frozen, anything that asked it would wait out the 5 s deadline.
    s.coordinator.child.kill("SIGSTOP");
    let refused: Response;
    const started = Date.now();
    try {
      refused = await fetch(eventsUrl(t.id, s.token(user)));
    } finally {
      s.coordinator.child.kill("SIGCONT");
    }
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(await refused.json()).toMatchObject({ error: { code: "UNAVAILABLE", details: { limit: MAX_STREAMS } } });
    expect(await gatewayRefused()).toBe(refusedBefore + 1);

    await a.stream.close();
    await eventually(async () => expect(await gatewayStreams()).toBe(MAX_STREAMS - 1));
    const c = await open();
    expect(c.res.status).toBe(200);
    expect((await c.stream.nextEvent())?.event).toBe("trade");
    // b lived through the pause.
    expect((await b.stream.next(3_000))?.comment).toBe("keep-alive");
  });

  it("ends the stream with UNAUTHENTICATED when the token expires", async () => {
    const user = "u-sse-expiry";
    const t = await newTrade(user);
    const token = signJwt(JWT_SECRET, { sub: user, role: "user" }, { expiresIn: 2 });
    const exp = (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number }).exp * 1000;
    const { res, stream } = await follow(eventsUrl(t.id, token));
    expect(res.status).toBe(200);
    expect((await stream.nextEvent())?.event).toBe("trade");
    const rest = events(await stream.rest(5_000));
    const ended = Date.now();
    expect(rest).toHaveLength(1);
    expect(rest[0]!.event).toBe("error");
    expect(JSON.parse(rest[0]!.data!)).toEqual({ error: { code: "UNAUTHENTICATED", message: "the token has expired", details: {} } });
    // At exp, by the first poll after it.
    expect(ended).toBeGreaterThanOrEqual(exp);
    expect(ended - exp).toBeLessThan(2_000);
  });

  it("a failure inside the coordinator mid-stream says only INTERNAL, then the end", async () => {
    const user = "u-sse-bug";
    const t = await newTrade(user);
    const { stream } = await follow(eventsUrl(t.id, s.token(user)));
    expect((await stream.nextEvent())?.event).toBe("trade");
    // A row the coordinator cannot render ('infinity' is no Date): an unexpected error in its GetTrade.
    await s.sql`UPDATE instant_trades SET expires_at = 'infinity' WHERE id = ${t.id}`;
    try {
      const rest = events(await stream.rest());
      expect(rest).toEqual([{ event: "error", data: JSON.stringify({ error: { code: "INTERNAL", message: "internal error", details: {} } }) }]);
      const logged = await s.coordinator.waitForLog(/"method":"getTrade".*gRPC handler failed/, { timeout: 2_000 });
      expect(logged).toContain("Invalid time value");
    } finally {
      await s.sql`UPDATE instant_trades SET expires_at = now() + interval '30 minutes' WHERE id = ${t.id}`;
    }
  });

  it("shows admin actions as they happen, each version once, and ends at COMPLETED", async () => {
    const user = "u-sse-admin";
    const t = await newTrade(user);
    const { res, stream } = await follow(eventsUrl(t.id, s.token(user)));
    expect(res.status).toBe(200);
    const seen = [await stream.nextEvent()];
    expect(trades(seen).map((x) => x.status)).toEqual(["PENDING"]);

    // What an agent would report; a real transition always bumps the version (the stream's change detector).
    await s.sql`UPDATE instant_trades SET status = 'DEPOSIT_DETECTED', version = version + 1, updated_at = now() WHERE id = ${t.id}`;
    seen.push(await stream.nextEvent());
    expect(trades(seen).at(-1)?.status).toBe("DEPOSIT_DETECTED");

    const confirm = await s.api(`/api/v1/instant-trade/${t.id}/confirm-payment`, { token: s.adminToken("ops-1"), body: { reason: "deposit checked by hand" } });
    expect(confirm).toMatchObject({ status: 200, body: { status: "PAYMENT_CONFIRMED" } });
    seen.push(await stream.nextEvent());
    expect(trades(seen).at(-1)).toMatchObject({ status: "PAYMENT_CONFIRMED", version: confirm.body.version, event_id: String(confirm.body.version) });

    // Payouts are off in this stack: an admin settles it by hand from review.
    await s.sql`UPDATE instant_trades SET status = 'MANUAL_REVIEW', version = version + 1, updated_at = now() WHERE id = ${t.id}`;
    const complete = await eventually(async () => {
      const r = await s.api(`/api/v1/instant-trade/${t.id}/complete`, { token: s.adminToken("ops-2"), body: { reason: "paid by hand" } });
      expect(r.status).toBe(200);
      return r;
    });
    seen.push(...(await stream.rest()));
    const statuses = trades(seen).map((x) => x.status);
    // MANUAL_REVIEW may be too brief for a poll to see; the rest must all be there, in order.
    expect(statuses.filter((x) => x !== "MANUAL_REVIEW")).toEqual(["PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED", "COMPLETED"]);
    const versions = trades(seen).map((x) => x.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions.at(-1)).toBe(complete.body.version);
  });

  it("a client that leaves frees its slot and stops its poller: no more GetTrade", async () => {
    const user = "u-sse-leave";
    const t = await newTrade(user);
    const streams = await Promise.all(Array.from({ length: MAX_STREAMS }, async () => (await follow(eventsUrl(t.id, s.token(user)))).stream));
    for (const st of streams) expect((await st.nextEvent())?.event).toBe("trade");
    expect(await gatewayStreams()).toBe(MAX_STREAMS);
    const polling = await coordinatorGetTrades();
    await eventually(async () => expect(await coordinatorGetTrades()).toBeGreaterThan(polling + 5));

    for (const st of streams) await st.close();
    await eventually(async () => expect(await gatewayStreams()).toBe(0));
    // A poll cancelled mid-call may still be counted as the coordinator finishes it: wait for a still count.
    const after = await eventually(async () => {
      const n = await coordinatorGetTrades();
      await sleep(2 * POLL_MS);
      expect(await coordinatorGetTrades()).toBe(n);
      return n;
    });
    // Five poll periods: two live pollers would have asked ~10 times.
    await sleep(5 * POLL_MS);
    expect(await coordinatorGetTrades()).toBe(after);
  });

  it("the coordinator failing mid-stream is an `event: error` with the error body, then the end", async () => {
    const user = "u-sse-down";
    const t = await newTrade(user);
    const { stream } = await follow(eventsUrl(t.id, s.token(user)));
    expect((await stream.nextEvent())?.event).toBe("trade");
    try {
      await s.coordinator.kill("SIGKILL");
      const rest = events(await stream.rest());
      expect(rest).toEqual([
        { event: "error", data: JSON.stringify({ error: { code: "COORDINATOR_UNAVAILABLE", message: "the coordinator is unreachable", details: {} } }) },
      ]);
      expect(await gatewayStreams()).toBe(0);
    } finally {
      await s.restartCoordinator();
    }
    await eventually(async () => expect((await s.api("/readyz")).status).toBe(200), { timeout: 15_000 });
    const again = await follow(eventsUrl(t.id, s.token(user)));
    expect(trades([await again.stream.nextEvent()])).toMatchObject([{ id: t.id, status: "PENDING" }]);
  });
});

// Last in the file: it stops the file's gateway.
describe("gateway shutdown", () => {
  it("SIGTERM ends open streams, so the gateway stops cleanly instead of waiting them out", async () => {
    const user = "u-sse-shutdown";
    const t = await newTrade(user);
    const { stream } = await follow(eventsUrl(t.id, s.token(user)));
    expect((await stream.nextEvent())?.event).toBe("trade");
    const started = Date.now();
    const exited = s.gateway.kill("SIGTERM");
    // Ended without an error frame: the client just reconnects (to another gateway).
    expect(events(await stream.rest())).toEqual([]);
    // Not kept open until the shutdown timeout (10 s).
    expect(Date.now() - started).toBeLessThan(5_000);
    // 0, not the shutdown timeout's exit(1) after 10 s.
    expect(await exited).toBe(0);
    expect(s.gateway.lines.some((l) => l.includes('"msg":"Stopped"'))).toBe(true);
  });
});

async function metricsOf(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

/** Sum of the samples of `name` whose labels contain `labels`. */
function sample(text: string, name: string, labels = ""): number {
  let sum = 0;
  let found = false;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, "gm"))) {
    if (!(m[1] ?? "").includes(labels)) continue;
    found = true;
    sum += Number(m[2]);
  }
  return found ? sum : Number.NaN;
}

async function gatewayStreams(): Promise<number> {
  const n = sample(await metricsOf(`${s.gatewayUrl}/metrics`), "ponte_gateway_sse_streams");
  if (Number.isNaN(n)) throw new Error("ponte_gateway_sse_streams not in /metrics");
  return n;
}

async function gatewayRefused(): Promise<number> {
  const n = sample(await metricsOf(`${s.gatewayUrl}/metrics`), "ponte_gateway_sse_streams_refused_total");
  return Number.isNaN(n) ? 0 : n;
}

/** GetTrade calls the (current) coordinator process has answered, whatever the result. */
async function coordinatorGetTrades(): Promise<number> {
  const ready = s.coordinator.lines.find((l) => l.includes('"msg":"Coordinator ready"'));
  if (!ready) throw new Error("the coordinator has not logged Coordinator ready");
  const { metrics_port } = JSON.parse(ready) as { metrics_port: number };
  const n = sample(await metricsOf(`http://127.0.0.1:${metrics_port}/metrics`), "ponte_coordinator_grpc_requests_total", 'method="getTrade"');
  return Number.isNaN(n) ? 0 : n;
}
