import { PonteError, RetryableError } from "@ponte/common";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { toHttpError, validationError } from "./errors.js";

describe("toHttpError", () => {
  it("keeps a PonteError's code, message, details and status", () => {
    expect(toHttpError(new PonteError("QUOTE_EXPIRED", "the quote has expired", { quote_id: "q" }))).toEqual({
      status: 409,
      body: { error: { code: "QUOTE_EXPIRED", message: "the quote has expired", details: { quote_id: "q" } } },
      level: "debug",
    });
    expect(toHttpError(new RetryableError("COORDINATOR_UNAVAILABLE", "down"))).toMatchObject({ status: 503, level: "warn" });
  });

  it("says nothing about unknown errors", () => {
    for (const err of [new Error("secret=hunter2"), "a string", null, new PonteError("INTERNAL", "db password wrong", { dsn: "x" })]) {
      expect(toHttpError(err)).toEqual({ status: 500, body: { error: { code: "INTERNAL", message: "internal error", details: {} } }, level: "error" });
    }
  });

  it("maps Hono's own exceptions", () => {
    expect(toHttpError(new HTTPException(400)).body.error.code).toBe("INVALID_JSON");
    expect(toHttpError(new HTTPException(415))).toMatchObject({ status: 400, body: { error: { code: "INVALID_JSON" } } });
    expect(toHttpError(new HTTPException(413))).toMatchObject({ status: 413, body: { error: { code: "PAYLOAD_TOO_LARGE" } } });
    expect(toHttpError(new HTTPException(502)).status).toBe(500);
  });
});

describe("validationError", () => {
  const schema = z.strictObject({ a: z.string(), b: z.object({ c: z.number() }) });
  it("lists every field, nested paths dotted, unknown keys one by one", () => {
    const r = schema.safeParse({ b: { c: "x" }, x: 1, y: 2 });
    if (r.success) throw new Error("should fail");
    const e = validationError("json", r.error);
    expect(e.code).toBe("VALIDATION_ERROR");
    expect((e.details.fields as { field: string }[]).map((f) => f.field).sort()).toEqual(["a", "b.c", "x", "y"]);
  });

  it("makes a bad path parameter 400 INVALID_ID", () => {
    const r = z.object({ trade_id: z.string().min(5) }).safeParse({ trade_id: "x" });
    if (r.success) throw new Error("should fail");
    expect(validationError("param", r.error)).toMatchObject({ code: "INVALID_ID", httpStatus: 400 });
  });
});
