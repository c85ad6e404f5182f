// The stand-in on its own, driven by raw HTTP: the shapes and statuses a Vault client sees.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startVaultStandin, spawnVaultStandin, type VaultStandin } from "./index.js";

let v: VaultStandin;

async function call(method: string, path: string, o: { token?: string; bearer?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (o.token) headers["X-Vault-Token"] = o.token;
  if (o.bearer) headers.Authorization = `Bearer ${o.bearer}`;
  if (o.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${v.url}/v1/${path}`, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : null) as any };
}

beforeAll(async () => {
  v = await startVaultStandin({ rootToken: "root-token", unsealKey: "unseal-me" });
});
afterAll(async () => {
  await v.stop();
});

describe("Vault stand-in", () => {
  it("reports health and seal status without a token", async () => {
    const h = await call("GET", "sys/health");
    expect(h.status).toBe(200);
    expect(h.json).toMatchObject({ initialized: true, sealed: false, standby: false, cluster_name: expect.any(String) });
    expect((await call("GET", "sys/seal-status")).json).toMatchObject({ type: "shamir", sealed: false, t: 1, n: 1 });
  });

  it("writes KV v2 versions and reads the latest or a given one", async () => {
    const w1 = await call("POST", "secret/data/app/one", { token: "root-token", body: { data: { seed: "first" } } });
    expect(w1.status).toBe(200);
    expect(w1.json.data).toEqual({ created_time: expect.any(String), custom_metadata: null, deletion_time: "", destroyed: false, version: 1 });
    const w2 = await call("PUT", "secret/data/app/one", { bearer: "root-token", body: { data: { seed: "second" } } });
    expect(w2.json.data.version).toBe(2);

    const latest = await call("GET", "secret/data/app/one", { token: "root-token" });
    expect(latest.status).toBe(200);
    expect(latest.json).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, wrap_info: null, auth: null });
    expect(latest.json.data).toEqual({
      data: { seed: "second" },
      metadata: { created_time: expect.any(String), custom_metadata: null, deletion_time: "", destroyed: false, version: 2 },
    });
    expect((await call("GET", "secret/data/app/one?version=1", { token: "root-token" })).json.data.data).toEqual({ seed: "first" });
    expect((await call("GET", "secret/data/app/one?version=9", { token: "root-token" })).status).toBe(404);

    const meta = await call("GET", "secret/metadata/app/one", { token: "root-token" });
    expect(meta.json.data).toMatchObject({ current_version: 2, oldest_version: 1, versions: { "1": { destroyed: false }, "2": { destroyed: false } } });
  });

  it("enforces check-and-set and refuses a write without data", async () => {
    const first = await call("POST", "secret/data/app/cas", { token: "root-token", body: { data: { a: 1 }, options: { cas: 0 } } });
    expect(first.status).toBe(200);
    const stale = await call("POST", "secret/data/app/cas", { token: "root-token", body: { data: { a: 2 }, options: { cas: 0 } } });
    expect(stale).toEqual({ status: 400, json: { errors: ["check-and-set parameter did not match the current version"] } });
    expect((await call("POST", "secret/data/app/cas", { token: "root-token", body: { a: 3 } })).status).toBe(400);
  });

  it("answers a missing secret with 404 and empty errors, a deleted one with 404 and metadata", async () => {
    expect(await call("GET", "secret/data/app/missing", { token: "root-token" })).toEqual({ status: 404, json: { errors: [] } });
    v.writeSecret("secret", "app/deleted", { x: "1" });
    expect((await call("DELETE", "secret/data/app/deleted", { token: "root-token" })).status).toBe(204);
    const del = await call("GET", "secret/data/app/deleted", { token: "root-token" });
    expect(del.status).toBe(404);
    expect(del.json.data).toMatchObject({ data: null, metadata: { version: 1, deletion_time: expect.stringMatching(/\dT\d/) } });
  });

  it("refuses a bad, missing, revoked or expired token with 403 permission denied", async () => {
    const denied = { status: 403, json: { errors: ["permission denied"] } };
    expect(await call("GET", "secret/data/app/one", { token: "nope" })).toEqual(denied);
    expect(await call("GET", "secret/data/app/one")).toEqual(denied);
    const t = v.createToken({ policies: ["reader"] });
    v.writePolicy("reader", { path: { "secret/data/app/*": { capabilities: ["read"] } } });
    expect((await call("GET", "secret/data/app/one", { token: t })).status).toBe(200);
    // The policy grants read, not create, and nothing outside app/.
    expect(await call("POST", "secret/data/app/one", { token: t, body: { data: {} } })).toEqual(denied);
    v.writeSecret("secret", "other/x", { y: "1" });
    expect(await call("GET", "secret/data/other/x", { token: t })).toEqual(denied);
    v.revokeToken(t);
    expect(await call("GET", "secret/data/app/one", { token: t })).toEqual(denied);
    const e = v.createToken({ ttl: 60 });
    v.expireToken(e);
    expect(await call("GET", "auth/token/lookup-self", { token: e })).toEqual(denied);
  });

  it("looks up, renews and revokes a token itself", async () => {
    const t = v.createToken({ policies: ["reader"], ttl: 120 });
    const look = await call("GET", "auth/token/lookup-self", { token: t });
    expect(look.status).toBe(200);
    expect(look.json.data).toMatchObject({ id: t, policies: ["default", "reader"], creation_ttl: 120, renewable: true, type: "service", path: "auth/token/create" });
    expect(look.json.data.ttl).toBeGreaterThan(100);
    const renew = await call("POST", "auth/token/renew-self", { token: t, body: { increment: "1h" } });
    expect(renew.json.auth).toMatchObject({ client_token: t, lease_duration: 3600, renewable: true });
    expect((await call("GET", "auth/token/lookup-self", { token: "root-token" })).json.data).toMatchObject({ policies: ["root"], ttl: 0, expire_time: null });
    expect((await call("POST", "auth/token/renew-self", { token: "root-token", body: {} })).status).toBe(400);
    expect((await call("POST", "auth/token/revoke-self", { token: t })).status).toBe(204);
    expect((await call("GET", "auth/token/lookup-self", { token: t })).status).toBe(403);
  });

  it("logs in with AppRole, through the API as an operator would set it up", async () => {
    v.writePolicy("evm", { path: { "secret/data/ponte/agents/evm": { capabilities: ["read"] } } });
    expect((await call("POST", "auth/approle/role/evm-agent", { token: "root-token", body: { token_policies: ["evm"], token_ttl: "20m" } })).status).toBe(204);
    const roleId = (await call("GET", "auth/approle/role/evm-agent/role-id", { token: "root-token" })).json.data.role_id as string;
    const secretId = (await call("POST", "auth/approle/role/evm-agent/secret-id", { token: "root-token", body: {} })).json.data.secret_id as string;
    const login = await call("POST", "auth/approle/login", { body: { role_id: roleId, secret_id: secretId } });
    expect(login.status).toBe(200);
    expect(login.json.auth).toMatchObject({
      client_token: expect.stringMatching(/^hvs\./),
      policies: ["default", "evm"],
      token_policies: ["default", "evm"],
      metadata: { role_name: "evm-agent" },
      lease_duration: 1200,
      renewable: true,
    });
    const wrong = await call("POST", "auth/approle/login", { body: { role_id: roleId, secret_id: "wrong" } });
    expect(wrong).toEqual({ status: 400, json: { errors: ["invalid role or secret ID"] } });
    expect((await call("POST", "auth/approle/login", { body: {} })).json).toEqual({ errors: ["missing role_id"] });
    // AppRole's token reads its own path and nothing else.
    const token = login.json.auth.client_token as string;
    v.writeSecret("secret", "ponte/agents/evm", { seed: "x" });
    expect((await call("GET", "secret/data/ponte/agents/evm", { token })).status).toBe(200);
    expect((await call("GET", "secret/data/app/one", { token })).status).toBe(403);
  });

  it("limits secret_id uses when the role says so", async () => {
    const { roleId, secretId } = v.addAppRole({ roleName: "once", secretIdNumUses: 1 });
    expect((await call("POST", "auth/approle/login", { body: { role_id: roleId, secret_id: secretId } })).status).toBe(200);
    expect((await call("POST", "auth/approle/login", { body: { role_id: roleId, secret_id: secretId } })).status).toBe(400);
  });

  it("answers 503 Vault is sealed to everything but health, seal-status and unseal", async () => {
    expect((await call("PUT", "sys/seal", { token: v.createToken() })).status).toBe(403);
    expect((await call("PUT", "sys/seal", { token: "root-token" })).status).toBe(204);
    const sealed = { status: 503, json: { errors: ["Vault is sealed"] } };
    expect(await call("GET", "secret/data/app/one", { token: "root-token" })).toEqual(sealed);
    expect(await call("GET", "secret/data/app/one", { token: "bad" })).toEqual(sealed);
    expect(await call("POST", "auth/approle/login", { body: { role_id: "x" } })).toEqual(sealed);
    const h = await call("GET", "sys/health");
    expect(h.status).toBe(503);
    expect(h.json.sealed).toBe(true);
    expect((await call("GET", "sys/health?sealedcode=200")).status).toBe(200);
    expect((await call("PUT", "sys/unseal", { body: { key: "wrong" } })).status).toBe(400);
    expect((await call("PUT", "sys/unseal", { body: { key: "unseal-me" } })).json.sealed).toBe(false);
    expect((await call("GET", "secret/data/app/one", { token: "root-token" })).status).toBe(200);
  });

  it("stops and resumes listening on the same port, state kept; restart comes back sealed", async () => {
    await v.stopListening();
    await expect(fetch(`${v.url}/v1/sys/health`)).rejects.toThrow();
    await v.startListening();
    expect((await call("GET", "secret/data/app/one", { token: "root-token" })).json.data.data).toEqual({ seed: "second" });
    await v.restart();
    expect((await call("GET", "secret/data/app/one", { token: "root-token" })).status).toBe(503);
    v.unseal();
    expect(v.requests()["GET /v1/secret/data/app/one"]).toBeGreaterThan(0);
    expect(JSON.stringify(v.requests())).not.toContain("root-token");
  });

  it("answers unknown routes with 404 and unsupported verbs with 405", async () => {
    expect((await call("GET", "nomount/data/x", { token: "root-token" })).status).toBe(404);
    expect((await call("PATCH", "secret/data/app/one", { token: "root-token" })).status).toBe(405);
  });
});

describe("Vault stand-in process (main.ts)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vault-standin-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("starts from env and a seed file, and serves secrets and AppRole logins", async () => {
    const seedFile = join(dir, "seed.json");
    await writeFile(
      seedFile,
      JSON.stringify({
        policies: { evm: { path: { "secret/data/ponte/agents/evm": { capabilities: ["read"] } } } },
        secrets: [{ path: "ponte/agents/evm", data: { seed: "00112233445566778899aabbccddeeff" } }],
        approle: [{ role_name: "evm-agent", role_id: "role-1", secret_id: "secret-1", token_policies: ["evm"], token_ttl: "1h" }],
      }),
    );
    const p = await spawnVaultStandin({ VAULT_DEV_ROOT_TOKEN: "proc-root", VAULT_STANDIN_SEED_FILE: seedFile, LOG_LEVEL: "info" });
    try {
      const login = await fetch(`${p.url}/v1/auth/approle/login`, { method: "POST", body: JSON.stringify({ role_id: "role-1", secret_id: "secret-1" }) });
      const token = ((await login.json()) as any).auth.client_token as string;
      const read = await fetch(`${p.url}/v1/secret/data/ponte/agents/evm`, { headers: { "X-Vault-Token": token } });
      expect(((await read.json()) as any).data.data.seed).toBe("00112233445566778899aabbccddeeff");
      const root = await fetch(`${p.url}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": "proc-root" } });
      expect(root.status).toBe(200);
    } finally {
      await p.stop();
    }
  });
});
