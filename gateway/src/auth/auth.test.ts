import { exportSPKI, generateKeyPair, SignJWT, base64url } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildAppWithoutCoordinator, errorOf, send, type TestApp } from "../_test/app.js";
import { TEST_JWT_SECRET, signToken, testConfig } from "../_test/auth.js";
import { createAuthenticator } from "./index.js";

const TRADE = "/api/v1/instant-trade/trd_06h2d176hda7fc46fchwk6mza8";
const COMPLETE = `${TRADE}/complete`;
const now = () => Math.floor(Date.now() / 1000);
const enc = (o: unknown) => base64url.encode(JSON.stringify(o));

let t: TestApp;
beforeAll(async () => {
  t = await buildAppWithoutCoordinator();
});
afterAll(() => t.close());

async function expect401(authorization: string | undefined) {
  const res = await t.app.request(TRADE, { headers: authorization === undefined ? {} : { authorization } });
  expect(res.status).toBe(401);
  expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
  expect((await errorOf(res)).code).toBe("UNAUTHENTICATED");
}

describe("bearer tokens", () => {
  it("refuses a request without a token", () => expect401(undefined));

  it("refuses a header that is not a bearer token", async () => {
    await expect401("Basic dXNlcjpwYXNz");
    await expect401("Bearer");
    await expect401("Bearer not a token");
    await expect401(`Bearer ${"a".repeat(10_000)}`);
  });

  it("refuses an expired token", async () => {
    await expect401(`Bearer ${await signToken({ sub: "u1", expiresIn: -60 })}`);
  });

  it("refuses a token signed with another secret", async () => {
    await expect401(`Bearer ${await signToken({ sub: "u1", secret: "another-secret-that-is-long-enough-000" })}`);
  });

  it("refuses a token whose payload was altered after signing", async () => {
    const [h, , s] = (await signToken({ sub: "u1" })).split(".");
    await expect401(`Bearer ${h}.${enc({ sub: "u1", role: "admin", exp: now() + 300 })}.${s}`);
  });

  it("refuses alg none", async () => {
    await expect401(`Bearer ${enc({ alg: "none", typ: "JWT" })}.${enc({ sub: "u1", role: "admin", exp: now() + 300 })}.`);
  });

  it("refuses a token without exp or without sub", async () => {
    const key = new TextEncoder().encode(TEST_JWT_SECRET);
    const noExp = await new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject("u1").sign(key);
    const noSub = await new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() + 300).sign(key);
    await expect401(`Bearer ${noExp}`);
    await expect401(`Bearer ${noSub}`);
  });

  it("refuses a role outside user/admin and a sub longer than 128", async () => {
    await expect401(`Bearer ${await signToken({ sub: "u1", role: "root" })}`);
    await expect401(`Bearer ${await signToken({ sub: "u".repeat(129) })}`);
  });

  it("refuses HS384 even with the right secret", async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS384" })
      .setSubject("u1")
      .setExpirationTime(now() + 300)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    await expect401(`Bearer ${token}`);
  });

  it("lets a valid token through to the coordinator (which is down here: 503)", async () => {
    const res = await t.app.request(TRADE, { headers: { authorization: `Bearer ${await signToken({ sub: "u1" })}` } });
    expect(res.status).toBe(503);
  });
});

describe("roles", () => {
  it("answers 403 to a user on an admin route, before looking at the body", async () => {
    const authorization = `Bearer ${await signToken({ sub: "u1", role: "user" })}`;
    const res = await send(t.app, "POST", COMPLETE, { headers: { authorization }, body: "{not json" });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe("FORBIDDEN");
  });

  it("treats a token without a role as a user", async () => {
    const authorization = `Bearer ${await signToken({ sub: "u1" })}`;
    const res = await send(t.app, "POST", COMPLETE, { headers: { authorization }, body: { reason: "x" } });
    expect(res.status).toBe(403);
  });

  it("lets an admin through (to validation, then the coordinator)", async () => {
    const authorization = `Bearer ${await signToken({ sub: "a1", role: "admin" })}`;
    const bad = await send(t.app, "POST", COMPLETE, { headers: { authorization }, body: {} });
    expect(bad.status).toBe(422);
    const ok = await send(t.app, "POST", COMPLETE, { headers: { authorization }, body: { reason: "bank statement checked" } });
    expect(ok.status).toBe(503);
  });

  it("answers 401 before 403: no token on an admin route", async () => {
    const res = await send(t.app, "POST", COMPLETE, { body: { reason: "x" } });
    expect(res.status).toBe(401);
  });
});

describe("RS256", () => {
  it("verifies RS256 with JWT_PUBLIC_KEY and refuses HS256 tokens when no secret is set", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
    const pem = await exportSPKI(publicKey);
    const auth = createAuthenticator(testConfig({ JWT_SECRET: "", JWT_PUBLIC_KEY: pem }));
    const rs = await new SignJWT({ role: "admin", document: "52998224725" })
      .setProtectedHeader({ alg: "RS256" })
      .setSubject("a1")
      .setExpirationTime(now() + 300)
      .sign(privateKey);
    await expect(auth.verify(`Bearer ${rs}`)).resolves.toEqual({ userId: "a1", role: "admin", document: "52998224725", expiresAt: expect.any(Number) });
    await expect(auth.verify(`Bearer ${await signToken({ sub: "u1" })}`)).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
  });

  it("does not accept an HS256 token keyed with the public key's text (alg confusion)", async () => {
    const { publicKey } = await generateKeyPair("RS256", { extractable: true });
    const pem = await exportSPKI(publicKey);
    const auth = createAuthenticator(testConfig({ JWT_PUBLIC_KEY: pem }));
    const forged = await signToken({ sub: "a1", role: "admin", secret: pem });
    await expect(auth.verify(`Bearer ${forged}`)).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
  });

  it("accepts the PEM with literal \\n, as env files carry it", async () => {
    const { publicKey } = await generateKeyPair("RS256", { extractable: true });
    const oneLine = (await exportSPKI(publicKey)).replace(/\n/g, "\\n");
    expect(testConfig({ JWT_PUBLIC_KEY: oneLine }).JWT_PUBLIC_KEY).toContain("\n");
  });
});

describe("verified-token cache", () => {
  it("still refuses a kept token once it expires, and never keeps a refused one", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    try {
      const auth = createAuthenticator(testConfig({ JWT_CLOCK_TOLERANCE_S: "0" }));
      const token = await signToken({ sub: "u1", expiresIn: 60 });
      await expect(auth.verifyToken(token)).resolves.toMatchObject({ userId: "u1" });
      await expect(auth.verifyToken(token)).resolves.toMatchObject({ userId: "u1" });
      vi.setSystemTime(Date.now() + 61_000);
      await expect(auth.verifyToken(token)).rejects.toMatchObject({ code: "UNAUTHENTICATED", message: "the token has expired" });
      await expect(auth.verifyToken(token)).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
      // Signed with another secret: refused each time, however often presented.
      const forged = await signToken({ sub: "u1", secret: "another-secret-0123456789abcdef-xyz" });
      for (let i = 0; i < 3; i++) await expect(auth.verifyToken(forged)).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    } finally {
      vi.useRealTimers();
    }
  });

  it("is bounded: the oldest token is dropped (and verified again when it comes back); 0 keeps none", async () => {
    const auth = createAuthenticator(testConfig({ JWT_CACHE_SIZE: "2" }));
    const tokens = await Promise.all(["a", "b", "c", "a"].map((sub, i) => signToken({ sub, extra: { n: i } })));
    for (const t of tokens) await expect(auth.verifyToken(t)).resolves.toMatchObject({ expiresAt: expect.any(Number) });
    const p = await auth.verifyToken(tokens[1]!);
    expect(Object.isFrozen(p)).toBe(true);
    const none = createAuthenticator(testConfig({ JWT_CACHE_SIZE: "0" }));
    await expect(none.verifyToken(tokens[0]!)).resolves.toMatchObject({ userId: "a" });
  });
});
