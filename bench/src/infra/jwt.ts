import { createHmac } from "node:crypto";

/** HS256 JWT (the gateway verifies it with jose). */
export function signJwt(secret: string, claims: Record<string, unknown>, ttlSeconds = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ iat: now, exp: now + ttlSeconds, ...claims })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}
