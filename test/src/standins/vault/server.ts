// The HTTP side of the Vault stand-in: the slice of Vault's API the agents use, with Vault's
// status codes and JSON shapes. Request logs carry method, path and status, never a token or body.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "@ponte/common";
import {
  DEFAULT_POLICY,
  KV_MAX_VERSIONS,
  VaultPolicySchema,
  capabilitiesFor,
  newAccessor,
  newToken,
  newUuid,
  parseDuration,
  type AppRoleRole,
  type Capability,
  type KvSecret,
  type TokenEntry,
  type VaultPolicy,
} from "./model.js";

export const STANDIN_VERSION = "1.17.0+standin";
const MAX_BODY_BYTES = 1 << 20;

export interface VaultStandinServerOptions {
  rootToken: string;
  /** The one key share sys/unseal accepts. */
  unsealKey: string;
  kvMounts: string[];
  approleMounts: string[];
  logger: Logger;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    super(errors.join("; ") || `HTTP ${status}`);
  }
}

const denied = () => new HttpError(403, ["permission denied"]);
const noHandler = (path: string) => new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
const unsupported = () => new HttpError(405, ["unsupported operation"]);
const iso = (ms: number) => new Date(ms).toISOString();

type Reply = { status: number; body?: unknown };

export class VaultStandinServer {
  readonly server: Server;
  sealed = false;
  readonly tokens = new Map<string, TokenEntry>();
  readonly policies = new Map<string, VaultPolicy>([["default", DEFAULT_POLICY]]);
  readonly kv = new Map<string, Map<string, KvSecret>>();
  readonly approle = new Map<string, Map<string, AppRoleRole>>();
  readonly requestCounts = new Map<string, number>();
  readonly clusterId = newUuid();

  constructor(readonly opts: VaultStandinServerOptions) {
    for (const m of opts.kvMounts) this.kv.set(m, new Map());
    for (const m of opts.approleMounts) this.approle.set(m, new Map());
    this.tokens.set(opts.rootToken, {
      id: opts.rootToken,
      accessor: newAccessor(),
      policies: ["root"],
      displayName: "root",
      path: "auth/token/root",
      meta: null,
      issuedAt: Date.now(),
      creationTtl: 0,
      expiresAt: null,
      renewable: false,
      orphan: true,
    });
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  // ---- state operations, shared by the HTTP routes and the in-process admin API ----

  createToken(o: { id?: string; policies?: string[]; ttl?: number; renewable?: boolean; path?: string; meta?: Record<string, string> | null; displayName?: string; noDefaultPolicy?: boolean }): TokenEntry {
    const ttl = o.ttl ?? 0;
    const policies = [...new Set([...(o.noDefaultPolicy || (o.policies ?? []).includes("root") ? [] : ["default"]), ...(o.policies ?? [])])];
    const now = Date.now();
    const t: TokenEntry = {
      id: o.id ?? newToken(),
      accessor: newAccessor(),
      policies,
      displayName: o.displayName ?? "token",
      path: o.path ?? "auth/token/create",
      meta: o.meta ?? null,
      issuedAt: now,
      creationTtl: ttl,
      expiresAt: ttl > 0 ? now + ttl * 1000 : null,
      renewable: ttl > 0 && (o.renewable ?? true),
      orphan: o.path !== "auth/token/create",
    };
    this.tokens.set(t.id, t);
    return t;
  }

  validToken(id: string | undefined): TokenEntry | null {
    if (!id) return null;
    const t = this.tokens.get(id);
    if (!t) return null;
    if (t.expiresAt !== null && t.expiresAt <= Date.now()) {
      this.tokens.delete(id);
      return null;
    }
    return t;
  }

  /** Tokens whose creating endpoint starts with prefix; the root token is never among them. */
  revokePrefix(prefix: string): number {
    let n = 0;
    for (const [id, t] of this.tokens) {
      if (id !== this.opts.rootToken && t.path.startsWith(prefix)) {
        this.tokens.delete(id);
        n++;
      }
    }
    return n;
  }

  writeSecret(mount: string, path: string, data: Record<string, unknown>, cas?: number): { version: number; createdTime: string } {
    const m = this.kv.get(mount);
    if (!m) throw noHandler(`${mount}/data/${path}`);
    const existing = m.get(path);
    if (cas !== undefined && cas !== (existing?.currentVersion ?? 0)) {
      throw new HttpError(400, ["check-and-set parameter did not match the current version"]);
    }
    const now = iso(Date.now());
    const s: KvSecret = existing ?? { versions: new Map(), currentVersion: 0, createdTime: now, updatedTime: now };
    s.currentVersion += 1;
    s.updatedTime = now;
    s.versions.set(s.currentVersion, { data: structuredClone(data), createdTime: now, deletionTime: "", destroyed: false });
    for (const v of s.versions.keys()) if (v <= s.currentVersion - KV_MAX_VERSIONS) s.versions.delete(v);
    m.set(path, s);
    return { version: s.currentVersion, createdTime: now };
  }

  upsertRole(mount: string, name: string, o: { tokenPolicies?: string[]; tokenTtl?: number; secretIdNumUses?: number; bindSecretId?: boolean; roleId?: string }): AppRoleRole {
    const roles = this.approle.get(mount);
    if (!roles) throw noHandler(`auth/${mount}/role/${name}`);
    const r = roles.get(name) ?? {
      name,
      roleId: newUuid(),
      secretIds: new Map(),
      tokenPolicies: [],
      tokenTtl: 0,
      secretIdNumUses: 0,
      bindSecretId: true,
    };
    if (o.tokenPolicies) r.tokenPolicies = o.tokenPolicies;
    if (o.tokenTtl !== undefined) r.tokenTtl = o.tokenTtl;
    if (o.secretIdNumUses !== undefined) r.secretIdNumUses = o.secretIdNumUses;
    if (o.bindSecretId !== undefined) r.bindSecretId = o.bindSecretId;
    if (o.roleId) r.roleId = o.roleId;
    roles.set(name, r);
    return r;
  }

  addSecretId(r: AppRoleRole, secretId: string = newUuid()): { secretId: string; accessor: string } {
    const accessor = newUuid();
    r.secretIds.set(secretId, { accessor, usesLeft: r.secretIdNumUses, limited: r.secretIdNumUses > 0 });
    return { secretId, accessor };
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://standin");
    const method = (req.method ?? "GET").toUpperCase();
    let reply: Reply;
    try {
      const body = method === "POST" || method === "PUT" ? await readJson(req) : {};
      reply = this.route(method, url, req, body);
    } catch (e) {
      if (e instanceof HttpError) reply = { status: e.status, body: { errors: e.errors } };
      else {
        this.opts.logger.error({ err: e }, "Vault stand-in failed a request");
        reply = { status: 500, body: { errors: ["internal error"] } };
      }
    }
    const key = `${method} ${url.pathname}`;
    this.requestCounts.set(key, (this.requestCounts.get(key) ?? 0) + 1);
    this.opts.logger.debug({ method, path: url.pathname, status: reply.status }, "Vault stand-in request");
    if (reply.body === undefined || method === "HEAD") {
      res.writeHead(reply.status).end();
      return;
    }
    const json = JSON.stringify(reply.body);
    res.writeHead(reply.status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(json) }).end(json);
  }

  private route(method: string, url: URL, req: IncomingMessage, body: Record<string, unknown>): Reply {
    if (!url.pathname.startsWith("/v1/")) throw new HttpError(404, []);
    const path = url.pathname.slice(4).replace(/\/+$/, "");
    const op = method === "LIST" || (method === "GET" && url.searchParams.get("list") === "true") ? "LIST" : method;

    // Unauthenticated, and answered while sealed.
    if (path === "sys/health" && (op === "GET" || op === "HEAD")) return this.health(url);
    if (path === "sys/seal-status" && op === "GET") return { status: 200, body: this.sealStatus() };
    if (path === "sys/unseal" && (op === "PUT" || op === "POST")) return this.unsealRequest(body);

    if (this.sealed) throw new HttpError(503, ["Vault is sealed"]);

    const login = /^auth\/(.+)\/login$/.exec(path);
    if (login && this.approle.has(login[1]!) && (op === "POST" || op === "PUT")) return this.approleLogin(login[1]!, body);

    const token = this.validToken(tokenOf(req));
    if (!token) throw denied();
    const policies = token.policies.includes("root") ? null : token.policies.map((p) => this.policies.get(p)).filter((p): p is VaultPolicy => !!p);
    const allow = (...need: Capability[]) => {
      if (!policies) return;
      const caps = capabilitiesFor(policies, path);
      if (caps.has("deny") || !need.some((c) => caps.has(c))) throw denied();
    };
    const write = op === "POST" || op === "PUT";

    switch (path) {
      case "auth/token/lookup-self":
        if (op !== "GET" && !write) throw unsupported();
        allow(op === "GET" ? "read" : "update");
        return ok({ data: lookupData(token) });
      case "auth/token/renew-self":
        if (!write) throw unsupported();
        allow("update");
        return ok({ auth: this.renew(token, body.increment) });
      case "auth/token/revoke-self":
        if (!write) throw unsupported();
        allow("update");
        this.tokens.delete(token.id);
        return { status: 204 };
      case "auth/token/create":
        if (!write) throw unsupported();
        allow("create", "update");
        return ok({ auth: authData(this.createTokenFromBody(body)) });
      case "auth/token/revoke":
        if (!write) throw unsupported();
        allow("update");
        if (typeof body.token !== "string") throw new HttpError(400, ["missing token"]);
        this.tokens.delete(body.token);
        return { status: 204 };
      case "sys/seal":
        if (!write) throw unsupported();
        allow("sudo");
        this.sealed = true;
        return { status: 204 };
    }

    const revoke = /^sys\/leases\/revoke-prefix\/(.+)$/.exec(path);
    if (revoke) {
      if (!write) throw unsupported();
      allow("sudo");
      this.revokePrefix(revoke[1]!);
      return { status: 204 };
    }

    const policy = /^sys\/(?:policies\/acl|policy)\/([^/]+)$/.exec(path);
    if (policy) {
      if (op === "GET") {
        allow("read");
        const p = this.policies.get(policy[1]!);
        if (!p) throw new HttpError(404, []);
        return ok({ data: { name: policy[1], policy: JSON.stringify(p) } });
      }
      if (!write) throw unsupported();
      allow("create", "update");
      this.policies.set(policy[1]!, parsePolicy(body.policy));
      return { status: 204 };
    }

    const role = /^auth\/(.+)\/role\/([^/]+)(?:\/(role-id|secret-id|custom-secret-id))?$/.exec(path);
    if (role && this.approle.has(role[1]!)) return this.roleRoute(op, role[1]!, role[2]!, role[3], body, allow);

    const kv = /^([^/]+)\/(data|metadata)\/(.+)$/.exec(path);
    if (kv && this.kv.has(kv[1]!)) return this.kvRoute(op, kv[1]!, kv[2] as "data" | "metadata", kv[3]!, url, body, allow);

    throw noHandler(path);
  }

  private health(url: URL): Reply {
    const code = (name: string, def: number) => {
      const v = Number(url.searchParams.get(name));
      return Number.isInteger(v) && v >= 100 && v <= 599 ? v : def;
    };
    const body = {
      initialized: true,
      sealed: this.sealed,
      standby: false,
      performance_standby: false,
      replication_performance_mode: "disabled",
      replication_dr_mode: "disabled",
      server_time_utc: Math.floor(Date.now() / 1000),
      version: STANDIN_VERSION,
      enterprise: false,
      echo_duration_ms: 0,
      clock_skew_ms: 0,
      ...(this.sealed ? {} : { cluster_name: "vault-standin", cluster_id: this.clusterId }),
    };
    return { status: this.sealed ? code("sealedcode", 503) : code("activecode", 200), body };
  }

  sealStatus() {
    return {
      type: "shamir",
      initialized: true,
      sealed: this.sealed,
      t: 1,
      n: 1,
      progress: 0,
      nonce: "",
      version: STANDIN_VERSION,
      migration: false,
      recovery_seal: false,
      storage_type: "inmem",
      ...(this.sealed ? {} : { cluster_name: "vault-standin", cluster_id: this.clusterId }),
    };
  }

  private unsealRequest(body: Record<string, unknown>): Reply {
    if (body.reset === true) return { status: 200, body: this.sealStatus() };
    if (typeof body.key !== "string") throw new HttpError(400, ["'key' must be specified in request body as JSON, or 'reset' set to true"]);
    if (body.key !== this.opts.unsealKey) throw new HttpError(400, ["Unseal failed, invalid key"]);
    this.sealed = false;
    return { status: 200, body: this.sealStatus() };
  }

  private approleLogin(mount: string, body: Record<string, unknown>): Reply {
    if (typeof body.role_id !== "string" || body.role_id === "") throw new HttpError(400, ["missing role_id"]);
    const r = [...this.approle.get(mount)!.values()].find((x) => x.roleId === body.role_id);
    if (!r) throw new HttpError(400, ["invalid role or secret ID"]);
    if (r.bindSecretId) {
      if (typeof body.secret_id !== "string" || body.secret_id === "") throw new HttpError(400, ["missing secret_id"]);
      const s = r.secretIds.get(body.secret_id);
      if (!s) throw new HttpError(400, ["invalid role or secret ID"]);
      if (s.limited) {
        s.usesLeft -= 1;
        if (s.usesLeft <= 0) r.secretIds.delete(body.secret_id);
      }
    }
    const t = this.createToken({
      policies: r.tokenPolicies,
      ttl: r.tokenTtl,
      path: `auth/${mount}/login`,
      meta: { role_name: r.name },
      displayName: mount,
    });
    return ok({ auth: authData(t) });
  }

  private renew(t: TokenEntry, increment: unknown): Record<string, unknown> {
    if (!t.renewable || t.expiresAt === null) throw new HttpError(400, ["lease is not renewable"]);
    const inc = increment === undefined ? t.creationTtl : parseDuration(increment);
    if (inc === null) throw new HttpError(400, ["invalid increment"]);
    t.expiresAt = Date.now() + (inc || t.creationTtl) * 1000;
    return authData(t);
  }

  private createTokenFromBody(body: Record<string, unknown>): TokenEntry {
    const ttl = body.ttl === undefined ? 0 : parseDuration(body.ttl);
    if (ttl === null) throw new HttpError(400, ["invalid ttl"]);
    const policies = Array.isArray(body.policies) ? body.policies.filter((p): p is string => typeof p === "string") : [];
    return this.createToken({
      ...(typeof body.id === "string" && body.id ? { id: body.id } : {}),
      policies,
      ttl,
      renewable: body.renewable !== false,
      noDefaultPolicy: body.no_default_policy === true,
      displayName: typeof body.display_name === "string" ? `token-${body.display_name}` : "token",
      path: "auth/token/create",
    });
  }

  private roleRoute(op: string, mount: string, name: string, sub: string | undefined, body: Record<string, unknown>, allow: (...c: Capability[]) => void): Reply {
    const roles = this.approle.get(mount)!;
    const write = op === "POST" || op === "PUT";
    if (sub === undefined) {
      if (op === "GET") {
        allow("read");
        const r = roles.get(name);
        if (!r) throw new HttpError(404, []);
        return ok({ data: { token_policies: r.tokenPolicies, token_ttl: r.tokenTtl, secret_id_num_uses: r.secretIdNumUses, bind_secret_id: r.bindSecretId } });
      }
      if (op === "DELETE") {
        allow("delete");
        roles.delete(name);
        return { status: 204 };
      }
      if (!write) throw unsupported();
      allow("create", "update");
      const tokenTtl = body.token_ttl === undefined ? undefined : parseDuration(body.token_ttl);
      if (tokenTtl === null) throw new HttpError(400, ["invalid token_ttl"]);
      const pol = body.token_policies ?? body.policies;
      this.upsertRole(mount, name, {
        ...(Array.isArray(pol) ? { tokenPolicies: pol.filter((p): p is string => typeof p === "string") } : typeof pol === "string" ? { tokenPolicies: pol.split(",").map((s) => s.trim()).filter(Boolean) } : {}),
        ...(tokenTtl !== undefined ? { tokenTtl } : {}),
        ...(typeof body.secret_id_num_uses === "number" ? { secretIdNumUses: body.secret_id_num_uses } : {}),
        ...(typeof body.bind_secret_id === "boolean" ? { bindSecretId: body.bind_secret_id } : {}),
      });
      return { status: 204 };
    }
    const r = roles.get(name);
    if (!r) throw new HttpError(400, [`role "${name}" does not exist`]);
    if (sub === "role-id") {
      if (op === "GET") {
        allow("read");
        return ok({ data: { role_id: r.roleId } });
      }
      if (!write) throw unsupported();
      allow("update");
      if (typeof body.role_id !== "string" || !body.role_id) throw new HttpError(400, ["missing role_id"]);
      r.roleId = body.role_id;
      return { status: 204 };
    }
    if (!write) throw unsupported();
    allow("create", "update");
    let custom: string | undefined;
    if (sub === "custom-secret-id") {
      if (typeof body.secret_id !== "string" || !body.secret_id) throw new HttpError(400, ["missing secret_id"]);
      custom = body.secret_id;
    }
    const s = this.addSecretId(r, custom);
    return ok({ data: { secret_id: s.secretId, secret_id_accessor: s.accessor, secret_id_ttl: 0, secret_id_num_uses: r.secretIdNumUses } });
  }

  private kvRoute(op: string, mount: string, kind: "data" | "metadata", path: string, url: URL, body: Record<string, unknown>, allow: (...c: Capability[]) => void): Reply {
    const secrets = this.kv.get(mount)!;
    const s = secrets.get(path);
    if (kind === "metadata") {
      if (op === "GET") {
        allow("read");
        if (!s) throw new HttpError(404, []);
        return ok({ data: metadataData(s) }, mount);
      }
      if (op === "DELETE") {
        allow("delete");
        secrets.delete(path);
        return { status: 204 };
      }
      throw unsupported();
    }
    if (op === "GET") {
      allow("read");
      const asked = Number(url.searchParams.get("version") ?? 0);
      if (!s) throw new HttpError(404, []);
      const version = Number.isInteger(asked) && asked > 0 ? asked : s.currentVersion;
      const v = s.versions.get(version);
      if (!v) throw new HttpError(404, []);
      const metadata = { created_time: v.createdTime, custom_metadata: null, deletion_time: v.deletionTime, destroyed: v.destroyed, version };
      // A deleted or destroyed version: 404, but with the metadata, as Vault does.
      if (v.data === null || v.deletionTime !== "" || v.destroyed) return { status: 404, body: envelope({ data: { data: null, metadata } }, mount) };
      return ok({ data: { data: structuredClone(v.data), metadata } }, mount);
    }
    if (op === "POST" || op === "PUT") {
      allow(s ? "update" : "create");
      if (typeof body.data !== "object" || body.data === null || Array.isArray(body.data)) throw new HttpError(400, ["no data provided"]);
      const options = typeof body.options === "object" && body.options !== null ? (body.options as Record<string, unknown>) : {};
      const cas = typeof options.cas === "number" ? options.cas : undefined;
      const w = this.writeSecret(mount, path, body.data as Record<string, unknown>, cas);
      return ok({ data: { created_time: w.createdTime, custom_metadata: null, deletion_time: "", destroyed: false, version: w.version } }, mount);
    }
    if (op === "DELETE") {
      allow("delete");
      const v = s?.versions.get(s.currentVersion);
      if (v && v.deletionTime === "") v.deletionTime = iso(Date.now());
      return { status: 204 };
    }
    throw unsupported();
  }
}

function tokenOf(req: IncomingMessage): string | undefined {
  const h = req.headers["x-vault-token"];
  if (typeof h === "string" && h) return h;
  const auth = req.headers.authorization;
  const m = typeof auth === "string" ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
  return m?.[1];
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, ["request body too large"]));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8").trim();
      if (text === "") return resolve({});
      try {
        const v: unknown = JSON.parse(text);
        if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
        resolve(v as Record<string, unknown>);
      } catch {
        reject(new HttpError(400, ["failed to parse JSON input"]));
      }
    });
  });
}

function parsePolicy(v: unknown): VaultPolicy {
  // Vault takes HCL or JSON here; the stand-in only JSON (HCL's JSON form).
  if (typeof v !== "string") throw new HttpError(400, ["'policy' parameter not supplied or empty"]);
  try {
    return VaultPolicySchema.parse(JSON.parse(v));
  } catch {
    throw new HttpError(400, ["failed to parse policy (the stand-in accepts the JSON form only)"]);
  }
}

function envelope(o: { data?: unknown; auth?: unknown }, mount?: string) {
  return {
    request_id: newUuid(),
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data: o.data ?? null,
    wrap_info: null,
    warnings: null,
    auth: o.auth ?? null,
    ...(mount ? { mount_type: "kv" } : {}),
  };
}

const ok = (o: { data?: unknown; auth?: unknown }, mount?: string): Reply => ({ status: 200, body: envelope(o, mount) });

const ttlLeft = (t: TokenEntry) => (t.expiresAt === null ? 0 : Math.max(0, Math.round((t.expiresAt - Date.now()) / 1000)));

function lookupData(t: TokenEntry) {
  return {
    accessor: t.accessor,
    creation_time: Math.floor(t.issuedAt / 1000),
    creation_ttl: t.creationTtl,
    display_name: t.displayName,
    entity_id: "",
    expire_time: t.expiresAt === null ? null : iso(t.expiresAt),
    explicit_max_ttl: 0,
    id: t.id,
    issue_time: iso(t.issuedAt),
    meta: t.meta,
    num_uses: 0,
    orphan: t.orphan,
    path: t.path,
    policies: t.policies,
    renewable: t.renewable,
    ttl: ttlLeft(t),
    type: "service",
  };
}

function authData(t: TokenEntry) {
  return {
    client_token: t.id,
    accessor: t.accessor,
    policies: t.policies,
    token_policies: t.policies,
    metadata: t.meta,
    lease_duration: ttlLeft(t),
    renewable: t.renewable,
    entity_id: "",
    token_type: "service",
    orphan: t.orphan,
    mfa_requirement: null,
    num_uses: 0,
  };
}

function metadataData(s: KvSecret) {
  const versions: Record<string, unknown> = {};
  for (const [n, v] of s.versions) versions[String(n)] = { created_time: v.createdTime, deletion_time: v.deletionTime, destroyed: v.destroyed };
  return {
    cas_required: false,
    created_time: s.createdTime,
    current_version: s.currentVersion,
    custom_metadata: null,
    delete_version_after: "0s",
    max_versions: 0,
    oldest_version: Math.min(...s.versions.keys()),
    updated_time: s.updatedTime,
    versions,
  };
}
