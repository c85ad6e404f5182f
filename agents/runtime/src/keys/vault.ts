// Vault KV v2 as a key source, through node-vault. Token or AppRole auth. Errors carry the
// address, mount, path and HTTP status, never the token, the secret_id or the seed, and never
// the underlying axios error (its config holds the X-Vault-Token header).
import nodeVault from "node-vault";
import { PonteError, RetryableError, safeUrl, type Logger } from "@ponte/common";
import type { KeySource } from "./source.js";
import type { VaultSeedConfig } from "./types.js";

export const DEFAULT_KV_MOUNT = "secret";
export const DEFAULT_SEED_FIELD = "seed";
export const DEFAULT_APPROLE_MOUNT = "approle";
export const DEFAULT_VAULT_TIMEOUT_MS = 5_000;

// Mounts and paths are interpolated into URLs unencoded by node-vault: keep them to plain
// segments, none of them "." or "..".
const SEGMENT = String.raw`(?!\.\.?(?:/|$))[A-Za-z0-9_.@-]+`;
export const VAULT_PATH_RE = new RegExp(`^${SEGMENT}(?:/${SEGMENT})*$`);

type Op = "login" | "read" | "lookup";

interface LookupSelfData {
  ttl?: unknown;
  creation_ttl?: unknown;
  renewable?: unknown;
}

export function createVaultSource(cfg: VaultSeedConfig, logger: Logger): KeySource {
  const mount = cfg.mount ?? DEFAULT_KV_MOUNT;
  const field = cfg.field ?? DEFAULT_SEED_FIELD;
  const authMount = cfg.auth.method === "approle" ? (cfg.auth.mount ?? DEFAULT_APPROLE_MOUNT) : null;
  const vaultAddr = safeUrl(cfg.address);
  const where = { source: "vault", vault_addr: vaultAddr, mount, path: cfg.path, field };
  const log = logger.child({ component: "key-source", vault_addr: vaultAddr, key_ref: `${mount}/${cfg.path}` });

  for (const [name, value] of [["mount", mount], ["path", cfg.path], ...(authMount ? [["auth mount", authMount]] : [])] as const) {
    if (!VAULT_PATH_RE.test(value)) {
      throw new PonteError("VALIDATION_ERROR", `Vault ${name} "${value}" must be slash-separated segments of letters, digits, _ . @ -`);
    }
  }

  const client = nodeVault({
    endpoint: cfg.address,
    ...(cfg.auth.method === "token" ? { token: cfg.auth.token } : {}),
    ...(cfg.namespace ? { namespace: cfg.namespace } : {}),
    requestOptions: { timeout: cfg.timeoutMs ?? DEFAULT_VAULT_TIMEOUT_MS },
    // node-vault's debug channel prints request bodies, AppRole secret_id included.
    debug: () => undefined,
  });
  // node-vault falls back to $VAULT_TOKEN when no token is given; AppRole must use its own.
  if (cfg.auth.method === "approle") client.token = "";

  let closed = false;

  function classify(e: unknown, op: Op): PonteError {
    if (e instanceof PonteError) return e;
    const at = { ...where, op, ...(authMount ? { auth_mount: authMount } : {}) };
    const status = statusOf(e);
    if (status === undefined) {
      const reason = networkCodeOf(e);
      if (reason === undefined) {
        return new PonteError("KEY_SOURCE_UNAVAILABLE", `Vault request to ${vaultAddr} failed before it was sent`, {
          ...at,
          reason: "client_error",
          cause_name: e instanceof Error ? e.name : typeof e,
        });
      }
      return new RetryableError("KEY_SOURCE_UNAVAILABLE", `Vault at ${vaultAddr} is unreachable (${reason})`, { ...at, reason });
    }
    const d = { ...at, status };
    if (status === 503) {
      return new RetryableError("KEY_SOURCE_UNAVAILABLE", `Vault at ${vaultAddr} is sealed or not ready (HTTP 503)`, { ...d, reason: "sealed" });
    }
    if (status === 403 || (op === "login" && status === 400)) {
      const message =
        op === "login"
          ? `Vault refused the AppRole login at auth/${authMount} (HTTP ${status}): wrong role_id or secret_id, or the secret_id expired`
          : op === "lookup"
            ? `Vault no longer accepts this agent's token (HTTP 403): it was revoked or has expired`
            : `Vault refused to read ${mount}/${cfg.path} (HTTP 403): the token is invalid, expired or revoked, or its policy lacks read on ${mount}/data/${cfg.path}`;
      return new PonteError("KEY_SOURCE_DENIED", message, { ...d, reason: "denied" });
    }
    if (status === 404 && op === "read") {
      return new PonteError(
        "KEY_SOURCE_NOT_FOUND",
        `No secret at ${mount}/${cfg.path} in Vault (HTTP 404); write it with: vault kv put -mount=${mount} ${cfg.path} ${field}=…`,
        { ...d, reason: "missing_secret" },
      );
    }
    if (status === 404 && op === "login") {
      return new PonteError("KEY_SOURCE_NOT_FOUND", `Vault has no AppRole auth method at auth/${authMount} (HTTP 404)`, {
        ...d,
        reason: "missing_auth_mount",
      });
    }
    if (status === 429 || status >= 500) {
      return new RetryableError("KEY_SOURCE_UNAVAILABLE", `Vault at ${vaultAddr} answered HTTP ${status}`, { ...d, reason: "server_error" });
    }
    return new PonteError("KEY_SOURCE_UNAVAILABLE", `Vault at ${vaultAddr} answered HTTP ${status} to ${op}`, { ...d, reason: "unexpected_status" });
  }

  async function login(): Promise<void> {
    if (cfg.auth.method !== "approle") throw new Error("login() is for AppRole auth");
    let r: { auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown } } | undefined;
    try {
      // approleLogin stores auth.client_token on the client for the calls that follow.
      r = await client.approleLogin({ mount_point: authMount, role_id: cfg.auth.roleId, secret_id: cfg.auth.secretId });
    } catch (e) {
      client.token = "";
      throw classify(e, "login");
    }
    if (typeof r?.auth?.client_token !== "string" || r.auth.client_token === "") {
      client.token = "";
      throw new PonteError("KEY_SOURCE_DENIED", `Vault's AppRole login at auth/${authMount} returned no client token`, {
        ...where,
        auth_mount: authMount,
        reason: "no_token",
      });
    }
    log.info({ auth_mount: authMount, lease_duration_s: r.auth.lease_duration, renewable: r.auth.renewable }, "Logged in to Vault with AppRole");
  }

  async function readOnce(): Promise<{ raw: string; version: number | null }> {
    let res: unknown;
    try {
      res = await idempotent(() => client.read(`${mount}/data/${cfg.path}`));
    } catch (e) {
      throw classify(e, "read");
    }
    const body = isRecord(res) && isRecord(res.data) ? res.data : undefined;
    const data = body && isRecord(body.data) ? body.data : undefined;
    if (!data) {
      throw new PonteError("KEY_SOURCE_INVALID", `Vault returned no KV v2 data for ${mount}/${cfg.path}: is ${mount}/ a KV version 2 mount?`, {
        ...where,
        reason: "not_kv_v2",
      });
    }
    if (!Object.hasOwn(data, field)) {
      // Field names are not secret and tell the operator what is there instead.
      throw new PonteError("KEY_SOURCE_INVALID", `Secret ${mount}/${cfg.path} has no field "${field}"`, {
        ...where,
        reason: "missing_field",
        fields: Object.keys(data).slice(0, 20),
      });
    }
    const value = data[field];
    if (typeof value !== "string") {
      throw new PonteError("KEY_SOURCE_INVALID", `Field "${field}" of ${mount}/${cfg.path} is not a string`, {
        ...where,
        reason: "field_not_string",
        type: value === null ? "null" : typeof value,
      });
    }
    const meta = isRecord(body!.metadata) ? body!.metadata : {};
    return { raw: value, version: typeof meta.version === "number" ? meta.version : null };
  }

  // A renewable token past half its TTL is renewed so a periodic token outlives the agent's
  // quiet hours. Failure to renew is not a failure to validate: the token still works now.
  async function maybeRenew(d: LookupSelfData): Promise<void> {
    const ttl = typeof d.ttl === "number" ? d.ttl : 0;
    const creationTtl = typeof d.creation_ttl === "number" ? d.creation_ttl : 0;
    if (d.renewable !== true || ttl <= 0 || creationTtl <= 0 || ttl >= creationTtl / 2) return;
    try {
      const r = (await client.tokenRenewSelf()) as { auth?: { lease_duration?: unknown } };
      log.info({ ttl_s: ttl, lease_duration_s: r?.auth?.lease_duration }, "Renewed the Vault token");
    } catch (e) {
      const err = classify(e, "lookup");
      log.warn({ code: err.code, reason: err.details.reason, status: err.details.status, ttl_s: ttl }, "Could not renew the Vault token");
    }
  }

  return {
    name: "vault",
    ref: `vault:${mount}/${cfg.path}#${field}`,
    where,

    async read() {
      if (closed) throw closedError(where);
      let justLoggedIn = false;
      if (cfg.auth.method === "approle" && !client.token) {
        await login();
        justLoggedIn = true;
      }
      try {
        return await readOnce();
      } catch (e) {
        // An AppRole token can expire between reads; one fresh login, then the verdict stands.
        if (cfg.auth.method === "approle" && !justLoggedIn && e instanceof PonteError && e.code === "KEY_SOURCE_DENIED") {
          await login();
          return readOnce();
        }
        throw e;
      }
    },

    async check() {
      if (closed) throw closedError(where);
      if (cfg.auth.method === "approle" && !client.token) {
        await login();
        return;
      }
      let r: unknown;
      try {
        r = await idempotent(() => client.tokenLookupSelf());
      } catch (e) {
        const err = classify(e, "lookup");
        if (cfg.auth.method === "approle" && err.code === "KEY_SOURCE_DENIED") {
          log.warn({ status: err.details.status }, "Vault no longer accepts the AppRole token; logging in again");
          await login();
          return;
        }
        throw err;
      }
      const data = isRecord(r) && isRecord(r.data) ? (r.data as LookupSelfData) : {};
      await maybeRenew(data);
    },

    close() {
      closed = true;
      client.token = "";
    },
  };
}

export function closedError(where: Record<string, unknown>): PonteError {
  return new PonteError("KEY_SOURCE_UNAVAILABLE", "The seed handle is closed", { ...where, reason: "closed" });
}

// A keep-alive socket that Vault (or a proxy) closed while idle fails the next request with
// ECONNRESET. Reads are idempotent, so one immediate retry tells a stale socket from a lost Vault.
async function idempotent<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (networkCodeOf(e) === "ECONNRESET") return fn();
    throw e;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// node-vault's ApiResponseError carries response.statusCode; nothing else here has one.
function statusOf(e: unknown): number | undefined {
  if (!isRecord(e) || !isRecord(e.response)) return undefined;
  const s = e.response.statusCode;
  return typeof s === "number" ? s : undefined;
}

// axios errors (refused, reset, DNS, timeout) carry a string code and no HTTP response.
function networkCodeOf(e: unknown): string | undefined {
  if (!isRecord(e) || e.isAxiosError !== true) return undefined;
  return typeof e.code === "string" ? e.code : "network_error";
}
