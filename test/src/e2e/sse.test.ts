import { eventually } from "@ponte/common/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openSse, type SseFrame, type SseStream } from "../harness/sse.js";
import { evmAddresses, startStack, stockAddressPool, type Stack } from "../harness/stack.js";

// The live trade status (Server-Sent Events) end to end: gateway polling the real coordinator.
let s: Stack;
const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";

beforeAll(async () => {
  s = await startStack();
  await stockAddressPool(s, "anvil", evmAddresses(10));
});
afterAll(async () => {
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

// Streams a failed assertion left open would hold gateway slots into the next test.
const opened: SseStream[] = [];
afterEach(async () => {
  for (const st of opened.splice(0)) await st.close();
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
    const rest = await stream.rest();
    expect(rest.every((f) => f.event === "trade")).toBe(true);
    expect(trades(rest).map((x) => [x.status, x.event_id])).toEqual([["CANCELLED", String(cancel.body.version)]]);
    expect(cancel.body.version).toBeGreaterThan(get.body.version);
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
    // MANUAL_REVIEW may be too brief for a 500 ms poll to see; the rest must all be there, in order.
    expect(statuses.filter((x) => x !== "MANUAL_REVIEW")).toEqual(["PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED", "COMPLETED"]);
    const versions = trades(seen).map((x) => x.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions.at(-1)).toBe(complete.body.version);
  });

  it("a client that leaves frees its stream on the gateway", async () => {
    const t = await newTrade("u-sse-leave");
    const before = await gatewayStreams();
    const open = async () => (await follow(eventsUrl(t.id, s.token("u-sse-leave")))).stream;
    const streams = await Promise.all([open(), open(), open()]);
    for (const st of streams) expect((await st.nextEvent())?.event).toBe("trade");
    await eventually(async () => expect(await gatewayStreams()).toBe(before + 3));
    for (const st of streams) await st.close();
    await eventually(async () => expect(await gatewayStreams()).toBe(before));
  });
});

async function gatewayStreams(): Promise<number> {
  const text = await (await fetch(`${s.gatewayUrl}/metrics`)).text();
  const m = /^ponte_gateway_sse_streams(?:\{[^}]*\})? (\d+)$/m.exec(text);
  if (!m) throw new Error("ponte_gateway_sse_streams not in /metrics");
  return Number(m[1]);
}
