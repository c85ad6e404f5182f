import { createHmac } from "node:crypto";

/** HS256 JWT for tests (the gateway verifies it with jose; this side needs no library). */
export function signJwt(secret: string, claims: Record<string, unknown>, opts: { expiresIn?: number } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ iat: now, exp: now + (opts.expiresIn ?? 3600), ...claims })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}
