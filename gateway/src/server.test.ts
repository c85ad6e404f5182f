import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppWithoutCoordinator, type TestApp } from "./_test/app.js";
import { serveApp, type RunningServer } from "./server.js";
import { signToken } from "./_test/auth.js";

// The same answers over a real socket, where bodies arrive streamed and possibly chunked.

let t: TestApp;
let server: RunningServer;
beforeAll(async () => {
  t = await buildAppWithoutCoordinator();
  server = await serveApp(t.app, { port: 0, host: "127.0.0.1" });
});
afterAll(async () => {
  await server.close();
  t.close();
});

/** A raw request; chunked sends the body without Content-Length. */
function raw(method: string, path: string, body: string, headers: Record<string, string>, chunked = false) {
  return new Promise<{ status: number; json: unknown }>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, method, path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null }));
    });
    req.on("error", reject);
    if (chunked) {
      for (let i = 0; i < body.length; i += 1000) req.write(body.slice(i, i + 1000));
    } else {
      req.setHeader("content-length", Buffer.byteLength(body));
      req.write(body);
    }
    req.end();
  });
}

describe("over HTTP", () => {
  it("answers /healthz", async () => {
    expect(await raw("GET", "/healthz", "", {})).toEqual({ status: 200, json: { status: "ok" } });
  });

  it("refuses an oversized body, with or without Content-Length", async () => {
    const authorization = `Bearer ${await signToken({ sub: "u1" })}`;
    const big = JSON.stringify({ symbol: "x".repeat(20_000) });
    for (const chunked of [false, true]) {
      const res = await raw("POST", "/api/v1/instant-trade/quote", big, { authorization, "content-type": "application/json" }, chunked);
      expect(res).toMatchObject({ status: 413, json: { error: { code: "PAYLOAD_TOO_LARGE" } } });
    }
  });

  it("takes a body of exactly the limit and refuses one byte more, whether declared or chunked", async () => {
    const authorization = `Bearer ${await signToken({ sub: "u1" })}`;
    const headers = { authorization, "content-type": "application/json" };
    const frame = JSON.stringify({ symbol: "USDT", network: "polygon", crypto_amount: "1", pad: "" });
    const sized = (n: number) => frame.replace('"pad":""', `"pad":"${"p".repeat(n - Buffer.byteLength(frame))}"`);
    const limit = t.config.BODY_LIMIT_BYTES;
    for (const chunked of [false, true]) {
      // At the limit the body is read and validated: the unknown field is what is refused.
      const at = await raw("POST", "/api/v1/instant-trade/quote", sized(limit), headers, chunked);
      expect(at).toMatchObject({ status: 422, json: { error: { code: "VALIDATION_ERROR", details: { fields: [{ field: "pad" }] } } } });
      const over = await raw("POST", "/api/v1/instant-trade/quote", sized(limit + 1), headers, chunked);
      expect(over).toMatchObject({ status: 413, json: { error: { code: "PAYLOAD_TOO_LARGE", details: { limit_bytes: limit } } } });
    }
  });

  // No route reads a GET's body, so none is limited (the check would build a WHATWG Request per call).
  it("answers a GET with a body over the limit without reading it, and the connection after it", async () => {
    const res = await raw("GET", "/healthz", "g".repeat(200_000), { "content-type": "application/json" });
    expect(res).toEqual({ status: 200, json: { status: "ok" } });
    expect(await raw("GET", "/healthz", "", {})).toEqual({ status: 200, json: { status: "ok" } });
  });

  it("refuses a webhook body over 64 KiB, with or without Content-Length; takes one between the API's limit and 64 KiB", async () => {
    for (const chunked of [false, true]) {
      const big = await raw("POST", "/api/v1/webhooks/pix/starkbank", "w".repeat(64 * 1024 + 1), { "content-type": "application/json" }, chunked);
      expect(big).toMatchObject({ status: 413, json: { error: { code: "PAYLOAD_TOO_LARGE" } } });
      const mid = await raw("POST", "/api/v1/webhooks/pix/starkbank", "w".repeat(40_000), { "content-type": "application/json" }, chunked);
      expect(mid).toMatchObject({ status: 503, json: { error: { code: "COORDINATOR_UNAVAILABLE" } } });
    }
  });

  it("answers a chunked body within the limit like any other", async () => {
    const authorization = `Bearer ${await signToken({ sub: "u1" })}`;
    const ok = JSON.stringify({ symbol: "USDT", network: "polygon", crypto_amount: "1", pad: "p".repeat(5_000) });
    const res = await raw("POST", "/api/v1/instant-trade/quote", ok, { authorization, "content-type": "application/json" }, true);
    expect(res).toMatchObject({ status: 422, json: { error: { code: "VALIDATION_ERROR", details: { fields: [{ field: "pad" }] } } } });
    const bad = await raw("POST", "/api/v1/instant-trade/quote", "{oops", { authorization, "content-type": "application/json" }, true);
    expect(bad).toMatchObject({ status: 400, json: { error: { code: "INVALID_JSON" } } });
  });
});
