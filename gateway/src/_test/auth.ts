// Tokens and config for the gateway's unit tests. Production code never imports this.
import { SignJWT } from "jose";
import { loadConfig, type GatewayConfig } from "../config.js";

/** A secret long enough for the config's 32-character rule; for tests only. */
export const TEST_JWT_SECRET = "ponte-test-secret-0123456789abcdef";

/** A config for an in-process app: HS256 with TEST_JWT_SECRET unless overridden. */
export function testConfig(env: Record<string, string | undefined> = {}): GatewayConfig {
  return loadConfig({ JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "silent", ...env });
}

export interface TokenOptions {
  sub: string;
  role?: "user" | "admin" | string;
  document?: string;
  /** Seconds from now; negative for an expired token. Default 300. */
  expiresIn?: number;
  secret?: string;
  extra?: Record<string, unknown>;
}

/** An HS256 bearer token as the desk's identity service would issue it. */
export async function signToken(o: TokenOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { ...o.extra };
  if (o.role !== undefined) claims.role = o.role;
  if (o.document !== undefined) claims.document = o.document;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(o.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + (o.expiresIn ?? 300))
    .sign(new TextEncoder().encode(o.secret ?? TEST_JWT_SECRET));
}

/** The Authorization header for signToken(o). */
export const bearerFor = async (o: TokenOptions): Promise<{ authorization: string }> => ({
  authorization: `Bearer ${await signToken(o)}`,
});
