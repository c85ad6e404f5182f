import { TRADE_STATUSES } from "@ponte/common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppWithoutCoordinator, errorOf, send, type TestApp } from "../_test/app.js";
import { signToken } from "../_test/auth.js";

const ROUTES = [
  ["get", "/api/v1/instant-trade/assets"],
  ["post", "/api/v1/instant-trade/quote"],
  ["post", "/api/v1/instant-trade/create"],
  ["get", "/api/v1/instant-trade/{trade_id}"],
  ["post", "/api/v1/instant-trade/{trade_id}/cancel"],
  ["get", "/api/v1/instant-trade/history/my-trades"],
  ["post", "/api/v1/instant-trade/{trade_id}/confirm-payment"],
  ["post", "/api/v1/instant-trade/{trade_id}/complete"],
  ["get", "/api/v1/instant-trade/{trade_id}/audit-log"],
  ["get", "/api/v1/instant-trade/{trade_id}/events"],
  ["put", "/api/v1/users/me/pix-key"],
  ["get", "/api/v1/users/me/pix-key"],
  ["post", "/api/v1/webhooks/pix/{provider}"],
  ["get", "/healthz"],
  ["get", "/readyz"],
  ["get", "/metrics"],
] as const;

describe("with the coordinator down", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildAppWithoutCoordinator();
  });
  afterAll(() => t.close());

  it("/healthz answers 200", async () => {
    const res = await t.app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("/readyz answers 503 with the code", async () => {
    const res = await t.app.request("/readyz");
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: "not_ready", error: { code: "COORDINATOR_UNAVAILABLE" } });
  });

  it("an unknown route is 404 NOT_FOUND in the error shape, with or without a token", async () => {
    for (const [method, path] of [["GET", "/nope"], ["GET", "/api/v1/instant-trade/a/b/c"], ["DELETE", "/api/v1/instant-trade/quote"]] as const) {
      const res = await t.app.request(path, { method });
      expect(res.status).toBe(404);
      expect((await errorOf(res)).code).toBe("NOT_FOUND");
    }
  });

  it("/openapi.json is OpenAPI 3.1 and lists every route, the bearer scheme and the error schema", async () => {
    const res = await t.app.request("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>>;
      components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe("3.1.0");
    for (const [method, path] of ROUTES) expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.components.schemas.Error).toBeDefined();
    expect(doc.paths["/api/v1/instant-trade/create"]?.post?.responses["422"]).toBeDefined();
    expect(doc.paths["/api/v1/instant-trade/quote"]?.post?.security).toEqual([{ bearer: [] }]);
  });

  it("/openapi.json: the webhook takes no token; trades carry the payout's status and end-to-end id; statuses are common's", async () => {
    const doc = (await (await t.app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { security?: unknown; responses: Record<string, unknown>; parameters?: { name: string; schema: { enum?: string[] } }[] }>>;
      components: { schemas: Record<string, { properties: Record<string, unknown>; required?: string[] }> };
    };
    const webhook = doc.paths["/api/v1/webhooks/pix/{provider}"]?.post;
    expect(webhook?.security).toBeUndefined();
    expect(Object.keys(webhook?.responses ?? {}).sort()).toEqual(["200", "401", "404", "413", "500", "503"]);
    expect(doc.components.schemas.WebhookAck).toBeDefined();
    const trade = doc.components.schemas.Trade!;
    expect(trade.properties).toHaveProperty("payout_status");
    expect(trade.properties).toHaveProperty("payout_end_to_end_id");
    expect(trade.required).toEqual(expect.arrayContaining(["payout_status", "payout_end_to_end_id"]));
    const status = doc.paths["/api/v1/instant-trade/history/my-trades"]?.get?.parameters?.find((p) => p.name === "status");
    expect(status?.schema.enum).toEqual([...TRADE_STATUSES]);
  });

  it("echoes a sane X-Request-Id and makes one up otherwise", async () => {
    const mine = await t.app.request("/healthz", { headers: { "x-request-id": "abc-123" } });
    expect(mine.headers.get("x-request-id")).toBe("abc-123");
    const odd = await t.app.request("/healthz", { headers: { "x-request-id": "a b\"<" } });
    expect(odd.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("/metrics counts requests by route template, never by raw path", async () => {
    const authorization = `Bearer ${await signToken({ sub: "u1" })}`;
    await t.app.request("/api/v1/instant-trade/trd_06h2d176hda7fc46fchwk6mza8", { headers: { authorization } });
    await t.app.request("/api/v1/instant-trade/trd_bad", { headers: { authorization } });
    await t.app.request("/no/such/path");
    await send(t.app, "POST", "/api/v1/instant-trade/quote", { body: "x".repeat(20_000), headers: { authorization } });
    const res = await t.app.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain('ponte_gateway_http_requests_total{method="GET",route="/api/v1/instant-trade/:trade_id",status="503"');
    expect(text).toContain('ponte_gateway_http_requests_total{method="GET",route="/api/v1/instant-trade/:trade_id",status="400"');
    expect(text).toContain('ponte_gateway_http_requests_total{method="GET",route="unmatched",status="404"');
    expect(text).toContain('ponte_gateway_http_requests_total{method="POST",route="/api/v1/instant-trade/quote",status="413"');
    expect(text).toContain("ponte_gateway_http_request_duration_seconds_bucket");
    expect(text).toMatch(/ponte_gateway_coordinator_call_duration_seconds_count\{[^}]*method="GetTrade",code="COORDINATOR_UNAVAILABLE"/);
    expect(text).not.toContain("trd_06h2d176hda7fc46fchwk6mza8");
    expect(text).not.toContain("/no/such/path");
  });
});
