// A stand-in for HashiCorp Vault, for tests: no Vault server can be installed here. It speaks the
// slice of Vault's HTTP API the agents use (KV v2 with versions, token and AppRole auth, token
// lookup/renew/revoke, health, seal/unseal) with Vault's status codes and shapes, so the
// production node-vault client talks to it unchanged. Run it in-process (startVaultStandin) or
// as its own process (main.ts / spawnVaultStandin). Production code never imports this folder.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createLogger, type Logger } from "@ponte/common";
import { VaultStandinSeedSchema, parseDuration, type VaultPolicy, type VaultStandinSeed } from "./model.js";
import { VaultStandinServer } from "./server.js";

export { VaultStandinSeedSchema, type Capability, type VaultPolicy, type VaultStandinSeed } from "./model.js";
export { STANDIN_VERSION } from "./server.js";

export interface VaultStandinOptions {
  port?: number;
  host?: string;
  /** The root token, as `vault server -dev -dev-root-token-id`; random when omitted. */
  rootToken?: string;
  /** The single key share sys/unseal accepts; random when omitted. */
  unsealKey?: string;
  /** KV v2 mounts; ["secret"] (the dev server's) when omitted. */
  kvMounts?: string[];
  /** AppRole auth mounts; ["approle"] when omitted. */
  approleMounts?: string[];
  /** Policies, secrets, tokens and AppRole roles to start with. */
  seed?: VaultStandinSeed;
  logger?: Logger;
}

export interface VaultStandin {
  /** What VAULT_ADDR should be. */
  readonly url: string;
  readonly port: number;
  readonly rootToken: string;
  readonly unsealKey: string;
  /** Every request gets 503 "Vault is sealed" except sys/health, sys/seal-status and sys/unseal. */
  seal(): void;
  unseal(): void;
  readonly sealed: boolean;
  /** A token with these policies ("default" added); ttl in seconds, 0 = no expiry. */
  createToken(o?: { id?: string; policies?: string[]; ttl?: number; renewable?: boolean }): string;
  revokeToken(token: string): void;
  /** Revokes every token created under a path, as sys/leases/revoke-prefix (e.g. "auth/approle/"). */
  revokePrefix(prefix: string): number;
  /** Makes a token's TTL run out in `inSeconds` (now when omitted). */
  expireToken(token: string, inSeconds?: number): void;
  /** A new KV v2 version; returns its number. */
  writeSecret(mount: string, path: string, data: Record<string, unknown>): number;
  /** Soft-deletes the latest version, as DELETE /v1/<mount>/data/<path>. */
  deleteSecret(mount: string, path: string): void;
  readSecret(mount: string, path: string, version?: number): Record<string, unknown> | null;
  writePolicy(name: string, policy: VaultPolicy): void;
  /** Creates or updates an AppRole role and issues a secret_id for it. */
  addAppRole(o: { mount?: string; roleName: string; roleId?: string; secretId?: string; policies?: string[]; tokenTtl?: number; secretIdNumUses?: number }): {
    roleId: string;
    secretId: string;
  };
  /** Requests per "METHOD /v1/path" so far (no tokens, no bodies). */
  requests(): Record<string, number>;
  /** Closes the port and drops open connections: clients see ECONNREFUSED. State is kept. */
  stopListening(): Promise<void>;
  /** Listens again on the same port. */
  startListening(): Promise<void>;
  /** A process restart: the port closes and reopens, and Vault comes back sealed unless told otherwise. */
  restart(o?: { sealed?: boolean }): Promise<void>;
  readonly listening: boolean;
  stop(): Promise<void>;
}

export async function startVaultStandin(opts: VaultStandinOptions = {}): Promise<VaultStandin> {
  const logger = opts.logger ?? createLogger({ name: "vault-standin", level: "silent" });
  const rootToken = opts.rootToken ?? `hvs.${randomBytes(18).toString("base64url")}`;
  const unsealKey = opts.unsealKey ?? randomBytes(32).toString("base64");
  const s = new VaultStandinServer({
    rootToken,
    unsealKey,
    kvMounts: opts.kvMounts ?? ["secret"],
    approleMounts: opts.approleMounts ?? ["approle"],
    logger,
  });
  const host = opts.host ?? "127.0.0.1";
  if (opts.seed) applySeed(s, opts.seed);

  let port = opts.port ?? 0;
  let listening = false;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.server.listen(port, host, () => {
        s.server.off("error", reject);
        const addr = s.server.address();
        if (!addr || typeof addr !== "object") return reject(new Error("stand-in has no address"));
        port = addr.port;
        listening = true;
        resolve();
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      s.server.close(() => resolve());
      // Keep-alive sockets would otherwise go on answering after close().
      s.server.closeAllConnections();
    });
  await listen();
  const url = `http://${host}:${port}`;
  logger.info({ url }, "Vault stand-in listening");

  const role = (mount: string, name: string) => {
    const r = s.approle.get(mount)?.get(name);
    if (!r) throw new Error(`no AppRole role ${mount}/${name}`);
    return r;
  };

  return {
    url,
    port,
    rootToken,
    unsealKey,
    seal: () => {
      s.sealed = true;
    },
    unseal: () => {
      s.sealed = false;
    },
    get sealed() {
      return s.sealed;
    },
    createToken: (o = {}) => s.createToken({ ...o, path: "auth/token/create" }).id,
    revokeToken: (t) => {
      s.tokens.delete(t);
    },
    revokePrefix: (prefix) => s.revokePrefix(prefix),
    expireToken: (t, inSeconds = 0) => {
      const e = s.tokens.get(t);
      if (e) e.expiresAt = Date.now() + inSeconds * 1000 - (inSeconds === 0 ? 1 : 0);
    },
    writeSecret: (mount, path, data) => s.writeSecret(mount, path, data).version,
    deleteSecret: (mount, path) => {
      const sec = s.kv.get(mount)?.get(path);
      const v = sec?.versions.get(sec.currentVersion);
      if (v && v.deletionTime === "") v.deletionTime = new Date().toISOString();
    },
    readSecret: (mount, path, version) => {
      const sec = s.kv.get(mount)?.get(path);
      const v = sec?.versions.get(version ?? sec.currentVersion);
      return v?.data ? structuredClone(v.data) : null;
    },
    writePolicy: (name, policy) => {
      s.policies.set(name, policy);
    },
    addAppRole: (o) => {
      const mount = o.mount ?? "approle";
      s.upsertRole(mount, o.roleName, {
        tokenPolicies: o.policies ?? [],
        tokenTtl: o.tokenTtl ?? 3600,
        secretIdNumUses: o.secretIdNumUses ?? 0,
        ...(o.roleId ? { roleId: o.roleId } : {}),
      });
      const r = role(mount, o.roleName);
      return { roleId: r.roleId, secretId: s.addSecretId(r, o.secretId).secretId };
    },
    requests: () => Object.fromEntries(s.requestCounts),
    stopListening: unlisten,
    startListening: async () => {
      if (!listening) await listen();
    },
    restart: async (o = {}) => {
      await unlisten();
      s.sealed = o.sealed ?? true;
      await listen();
    },
    get listening() {
      return listening;
    },
    stop: unlisten,
  };
}

export function applySeed(s: VaultStandinServer, input: VaultStandinSeed): void {
  const seed = VaultStandinSeedSchema.parse(input);
  for (const m of seed.kv_mounts ?? []) if (!s.kv.has(m)) s.kv.set(m, new Map());
  for (const m of seed.approle_mounts ?? []) if (!s.approle.has(m)) s.approle.set(m, new Map());
  for (const [name, p] of Object.entries(seed.policies ?? {})) s.policies.set(name, p);
  for (const sec of seed.secrets ?? []) {
    if (!s.kv.has(sec.mount)) s.kv.set(sec.mount, new Map());
    s.writeSecret(sec.mount, sec.path, sec.data);
  }
  for (const t of seed.tokens ?? []) {
    s.createToken({ id: t.id, policies: t.policies, ttl: parseDuration(t.ttl) ?? 0, renewable: t.renewable, path: "auth/token/create" });
  }
  for (const a of seed.approle ?? []) {
    if (!s.approle.has(a.mount)) s.approle.set(a.mount, new Map());
    const r = s.upsertRole(a.mount, a.role_name, {
      tokenPolicies: a.token_policies,
      tokenTtl: parseDuration(a.token_ttl) ?? 3600,
      secretIdNumUses: a.secret_id_num_uses,
      ...(a.role_id ? { roleId: a.role_id } : {}),
    });
    if (a.secret_id) s.addSecretId(r, a.secret_id);
  }
}

/**
 * Runs main.js in a child process, so a test can kill it like a real Vault. Needs the compiled
 * stand-in (`npm run build -w @ponte/test`). env: PORT, VAULT_DEV_ROOT_TOKEN, VAULT_STANDIN_*.
 */
export async function spawnVaultStandin(env: Record<string, string> = {}): Promise<{
  url: string;
  port: number;
  process: ChildProcess;
  stop: () => Promise<void>;
}> {
  const child = spawn(process.execPath, [builtMainPath()], {
    env: { ...process.env, PORT: "0", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error("Vault stand-in did not start within 10 s")), 10_000);
    child.once("exit", (code) => reject(new Error(`Vault stand-in exited with ${code}`)));
    lines.on("line", (line) => {
      try {
        const j = JSON.parse(line) as { port?: number; msg?: string };
        if (j.msg === "Vault stand-in process ready" && typeof j.port === "number") {
          clearTimeout(timer);
          resolve(j.port);
        }
      } catch {
        // Not a log line of ours.
      }
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    process: child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** dist/standins/vault/main.js, also when this module is loaded from src/ by vitest. */
function builtMainPath(): string {
  const here = fileURLToPath(import.meta.url);
  const candidate = here.endsWith(".ts")
    ? here.replace(/[\\/]src[\\/](standins[\\/]vault[\\/])index\.ts$/, "/dist/$1main.js")
    : here.replace(/index\.js$/, "main.js");
  if (!existsSync(candidate)) throw new Error(`${candidate} is missing: build the test package first (npm run build -w @ponte/test)`);
  return candidate;
}
