import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppWithoutCoordinator, errorOf, type TestApp } from "../_test/app.js";
import { WEBHOOK_BODY_LIMIT_BYTES } from "./webhooks.js";

// The webhook route at the edge, with no coordinator listening: what it refuses by itself (a
// provider name that cannot exist, an oversized body) and that everything else goes to the
// coordinator — here 503, which tells the provider to retry. The signed path runs end to end in
// test/ against the real coordinator and the provider stand-in.

const PATH = "/api/v1/webhooks/pix";
let t: TestApp;
beforeAll(async () => {
  t = await buildAppWithoutCoordinator();
});
afterAll(() => t.close());

const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = { "content-type": "application/json" }) =>
  Promise.resolve(t.app.request(path, { method: "POST", headers, body }));

describe("POST /api/v1/webhooks/pix/{provider}", () => {
  it("answers 404 NOT_FOUND to a provider name outside [a-z0-9-]{1,32}", async () => {
    for (const provider of ["StarkBank", "stark_bank", "stark.bank", "x".repeat(33), "%20", "st%C3%A1rk", "-".repeat(33)]) {
      const res = await post(`${PATH}/${provider}`, "{}");
      expect({ provider, status: res.status }).toEqual({ provider, status: 404 });
      expect((await errorOf(res)).code).toBe("NOT_FOUND");
    }
    for (const path of [`${PATH}/`, `${PATH}/a/b`, PATH]) {
      expect((await post(path, "{}")).status).toBe(404);
    }
  });

  it("answers 404 to a bad provider name before looking at the body", async () => {
    const res = await post(`${PATH}/Nope`, "x".repeat(WEBHOOK_BODY_LIMIT_BYTES + 1));
    expect(res.status).toBe(404);
  });

  it("answers 413 PAYLOAD_TOO_LARGE past 64 KiB, and takes exactly 64 KiB", async () => {
    const over = await post(`${PATH}/starkbank`, "x".repeat(WEBHOOK_BODY_LIMIT_BYTES + 1));
    expect(over.status).toBe(413);
    expect(await errorOf(over)).toMatchObject({ code: "PAYLOAD_TOO_LARGE", details: { limit_bytes: 65_536 } });
    const at = await post(`${PATH}/starkbank`, "x".repeat(WEBHOOK_BODY_LIMIT_BYTES));
    expect(at.status).toBe(503);
  });

  it("is not held to the API's 16 KiB JSON limit", async () => {
    const res = await post(`${PATH}/starkbank`, JSON.stringify({ event: { log: "l".repeat(30_000) } }));
    expect(res.status).toBe(503);
    expect((await errorOf(res)).code).toBe("COORDINATOR_UNAVAILABLE");
  });

  it("needs no bearer token and parses nothing: any body and content type reach the coordinator (down here: 503)", async () => {
    const bodies: [string | Uint8Array, Record<string, string>][] = [
      ['{"event":{"id":"1"}}', { "content-type": "application/json", "digital-signature": "MEUCIQ..." }],
      ["{not json", { "content-type": "application/json" }],
      ["", { "content-type": "application/json" }],
      ["a=1&b=2", { "content-type": "application/x-www-form-urlencoded" }],
      [new Uint8Array([0xff, 0x00, 0xfe]), { "content-type": "application/octet-stream" }],
      ["{}", {}],
      ["{}", { authorization: "Bearer not-a-token" }],
    ];
    for (const [body, headers] of bodies) {
      const res = await post(`${PATH}/starkbank`, body, headers);
      expect(res.status).toBe(503);
      // 503, not 401: so the provider retries; and no bearer challenge on a webhook.
      expect(res.headers.get("www-authenticate")).toBeNull();
      expect(await errorOf(res)).toMatchObject({ code: "COORDINATOR_UNAVAILABLE" });
    }
  });

  it("answers 404 to other methods", async () => {
    for (const method of ["GET", "PUT", "DELETE"]) {
      expect((await t.app.request(`${PATH}/starkbank`, { method })).status).toBe(404);
    }
  });

  it("is counted under its route template, never the provider name", async () => {
    await post(`${PATH}/some-bank`, "{}");
    await post(`${PATH}/Some_Bank`, "{}");
    const text = await (await t.app.request("/metrics")).text();
    expect(text).toContain('ponte_gateway_http_requests_total{method="POST",route="/api/v1/webhooks/pix/:provider",status="503"');
    expect(text).toContain('ponte_gateway_http_requests_total{method="POST",route="/api/v1/webhooks/pix/:provider",status="404"');
    expect(text).toMatch(/ponte_gateway_coordinator_call_duration_seconds_count\{[^}]*method="IngestPixWebhook",code="COORDINATOR_UNAVAILABLE"/);
    expect(text).not.toContain("some-bank");
    expect(text).not.toContain("Some_Bank");
  });
});
