import { createPublicKey, webcrypto, type KeyObject } from "node:crypto";
import { PonteError } from "@ponte/common";
import type { MiddlewareHandler } from "hono";
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import type { GatewayConfig } from "../config.js";

export type Role = "user" | "admin";

/** Who is calling, as the desk's identity service vouched for them in the token. */
export interface Principal {
  userId: string;
  role: Role;
  /** CPF/CNPJ the identity service verified, when it put one in the token. */
  document?: string;
  /** The token's exp (unix seconds): long-lived connections end when their credential does. */
  expiresAt: number;
}

export interface Authenticator {
  /** Verifies an Authorization header value; throws UNAUTHENTICATED on anything short of a valid token. */
  verify(authorization: string | undefined): Promise<Principal>;
  /** Verifies a bare token (one that did not come in a header, e.g. ?access_token=). */
  verifyToken(token: string | undefined): Promise<Principal>;
}

type AuthConfig = Pick<
  GatewayConfig,
  "JWT_SECRET" | "JWT_PUBLIC_KEY" | "JWT_ISSUER" | "JWT_AUDIENCE" | "JWT_CLOCK_TOLERANCE_S" | "JWT_CACHE_SIZE"
>;

// Tokens are small; anything far bigger is not one of ours and is not worth parsing.
const MAX_TOKEN_LENGTH = 8 * 1024;
const BEARER = /^Bearer +([A-Za-z0-9_\-.=]+) *$/i;
const TOKEN = /^[A-Za-z0-9_\-.=]+$/;

const unauthenticated = (message: string) => new PonteError("UNAUTHENTICATED", message);

export function createAuthenticator(config: AuthConfig): Authenticator {
  const secret = config.JWT_SECRET ? new TextEncoder().encode(config.JWT_SECRET) : undefined;
  // The HS256 key imported once at start-up: handed the raw bytes, jose imports a CryptoKey on
  // every verification (WebCrypto importKey was ~11 % of the gateway's CPU under load; a
  // KeyObject, like the RS256 key below, it converts once and caches).
  const hmacKey = secret
    ? webcrypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["verify"])
    : undefined;
  let hmacReady: webcrypto.CryptoKey | undefined;
  void hmacKey?.then((k) => (hmacReady = k));
  const publicKey: KeyObject | undefined = config.JWT_PUBLIC_KEY ? createPublicKey(config.JWT_PUBLIC_KEY) : undefined;
  // The algorithm list is what stops alg confusion: HS256 only with the secret, RS256 only with the key.
  const algorithms = [...(secret ? ["HS256"] : []), ...(publicKey ? ["RS256"] : [])];
  const getKey: JWTVerifyGetKey = (header) => {
    const key = header.alg === "HS256" ? (hmacReady ?? hmacKey) : header.alg === "RS256" ? publicKey : undefined;
    if (!key) throw new errors.JOSEAlgNotAllowed(`alg ${String(header.alg)} is not allowed`);
    return key;
  };

  // Tokens that verified, by their exact text, until their exp: the frontend sends a user's token
  // on every call, and the signature check (WebCrypto HMAC through jose) was a quarter of the
  // gateway's CPU under load (bench/README.md, B1). A token that failed is never kept; the
  // oldest entry goes first when full. The keys do not change while the process runs.
  const verified = new Map<string, Principal>();
  const expired = (p: Principal) => Math.floor(Date.now() / 1000) - config.JWT_CLOCK_TOLERANCE_S >= p.expiresAt;

  async function verifyJwt(token: string): Promise<Principal> {
    const known = verified.get(token);
    if (known) {
      if (!expired(known)) return known;
      verified.delete(token);
      throw unauthenticated("the token has expired");
    }
    const principal = await verifySignedJwt(token);
    if (config.JWT_CACHE_SIZE > 0) {
      if (verified.size >= config.JWT_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(token, principal);
    }
    return principal;
  }

  async function verifySignedJwt(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms,
        requiredClaims: ["exp", "sub"],
        clockTolerance: config.JWT_CLOCK_TOLERANCE_S,
        ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
        ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw unauthenticated("the token has expired");
      if (err instanceof errors.JOSEError) throw unauthenticated("the token is invalid");
      throw err;
    }
    return principalFrom(payload);
  }

  return {
    async verify(authorization) {
      if (!authorization) throw unauthenticated("a bearer token is required");
      if (authorization.length > MAX_TOKEN_LENGTH + 16) throw unauthenticated("the token is too long");
      const m = BEARER.exec(authorization);
      if (!m) throw unauthenticated('the Authorization header must be "Bearer <token>"');
      return verifyJwt(m[1]!);
    },
    async verifyToken(token) {
      if (!token) throw unauthenticated("a bearer token is required");
      if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated("the token is too long");
      if (!TOKEN.test(token)) throw unauthenticated("the token is invalid");
      return verifyJwt(token);
    },
  };
}

function principalFrom(payload: JWTPayload): Principal {
  const { sub, role, document, exp } = payload as JWTPayload & { role?: unknown; document?: unknown };
  if (typeof sub !== "string" || sub.length < 1 || sub.length > 128) throw unauthenticated("the token's sub is invalid");
  if (role !== undefined && role !== "user" && role !== "admin") throw unauthenticated("the token's role is invalid");
  if (document !== undefined && (typeof document !== "string" || document.length < 1 || document.length > 32)) {
    throw unauthenticated("the token's document is invalid");
  }
  // jose has checked that exp is present and a number (requiredClaims).
  // Frozen: a verified principal is shared by every call that presents the same token.
  return Object.freeze({ userId: sub, role: role ?? "user", ...(document !== undefined ? { document } : {}), expiresAt: exp! });
}

export interface AuthVariables {
  principal: Principal | undefined;
}

/** Requires a valid token; with `role: "admin"` also requires an admin (403 for a user). */
export function requireAuth(auth: Authenticator, opts: { role?: Role } = {}): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const principal = await auth.verify(c.req.header("authorization"));
    c.set("principal", principal);
    if (opts.role === "admin" && principal.role !== "admin") {
      throw new PonteError("FORBIDDEN", "this action needs the admin role");
    }
    await next();
  };
}

/** No token is fine (public data); a token that is present must still be valid. */
export function optionalAuth(auth: Authenticator): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header("authorization");
    c.set("principal", header === undefined ? undefined : await auth.verify(header));
    await next();
  };
}

/** The principal set by requireAuth; calling it on a route without requireAuth is a programming error. */
export function principalOf(c: { get(key: "principal"): Principal | undefined }): Principal {
  const p = c.get("principal");
  if (!p) throw new Error("principalOf() on a route without requireAuth()");
  return p;
}
