// The agents' Vault key source (node-vault, unchanged) against the Vault stand-in: start-up
// refusals, AppRole, versions, and "Vault lost later → signing fails closed, watching goes on".
import { createServer, type Server } from "node:http";
import { Writable } from "node:stream";
import { inspect } from "node:util";
import { Mnemonic } from "ethers";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PonteError } from "@ponte/common";
import { loadSeed, type SeedHandle, type VaultSeedConfig } from "@ponte/agent-runtime/keys";
import { startVaultStandin, type VaultStandin } from "../standins/vault/index.js";

// anvil's well-known development mnemonic: public, so safe in a test.
const MNEMONIC = "test test test test test test test test test test test junk";
const OTHER_SEED = "ff".repeat(32);
const TOKEN = "hvs.agent-token-5c1d9a";
const SECRET_ID = "approle-secret-id-77e1";
const PATH = "ponte/agents/evm";

function captureLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  // No redaction on purpose: the key source must not hand secrets to the logger at all.
  return { logger: pino({ level: "trace" }, stream), text: () => lines.join("") };
}

let vault: VaultStandin;
let log: ReturnType<typeof captureLogger>;
const handles: SeedHandle[] = [];

const tokenConfig = (o: Partial<VaultSeedConfig> = {}): VaultSeedConfig => ({
  source: "vault",
  address: vault.url,
  path: PATH,
  auth: { method: "token", token: TOKEN },
  timeoutMs: 2_000,
  ...o,
});

async function load(cfg: VaultSeedConfig): Promise<SeedHandle> {
  const h = await loadSeed(cfg, log.logger);
  handles.push(h);
  return h;
}

async function failure(p: Promise<unknown>): Promise<PonteError> {
  const e = await p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PonteError);
  return e as PonteError;
}

/** Nothing secret in the error (message, details, stack, cause) or in any log line so far. */
function expectNoSecrets(e?: PonteError) {
  const shown = [log.text(), e ? `${e.message}\n${JSON.stringify(e.details)}\n${inspect(e, { depth: 5 })}` : ""].join("\n");
  for (const secret of [TOKEN, SECRET_ID, MNEMONIC, "test test", OTHER_SEED, vault.rootToken]) expect(shown).not.toContain(secret);
  // Every token the stand-in issues (AppRole logins included) starts with hvs.
  expect(shown).not.toContain("hvs.");
}

beforeAll(async () => {
  vault = await startVaultStandin({ approleMounts: ["approle", "agents-approle"] });
  vault.writePolicy("evm-agent", { path: { [`secret/data/${PATH}`]: { capabilities: ["read"] } } });
  vault.createToken({ id: TOKEN, policies: ["evm-agent"], ttl: 3600 });
  vault.writeSecret("secret", PATH, { seed: MNEMONIC, note: "evm master seed" });
});

afterEach(async () => {
  expectNoSecrets();
  while (handles.length) await handles.pop()!.close();
  if (!vault.listening) await vault.startListening();
  vault.unseal();
  log = captureLogger();
});
log = captureLogger();

afterAll(async () => {
  await vault.stop();
});

describe("loading the seed from Vault", () => {
  it("reads KV v2 with a token: the mnemonic, its BIP39 seed and the version", async () => {
    const h = await load(tokenConfig());
    expect(h).toMatchObject({ source: "vault", kind: "mnemonic", ref: `vault:secret/${PATH}#seed`, version: 1 });
    expect(h.mnemonic()).toBe(MNEMONIC);
    expect(Buffer.from(h.seedBytes()).toString("hex")).toBe(Mnemonic.fromPhrase(MNEMONIC).computeSeed().slice(2));
    expect(JSON.stringify(h)).not.toContain("test test");
    expect(inspect(h)).not.toContain("test test");
    expect(log.text()).toContain('"msg":"Seed loaded"');
    expect(log.text()).toContain(h.fingerprint);
  });

  it("logs in with AppRole (custom mount) before reading", async () => {
    const { roleId } = vault.addAppRole({ mount: "agents-approle", roleName: "evm", secretId: SECRET_ID, policies: ["evm-agent"], tokenTtl: 600 });
    const before = vault.requests()["POST /v1/auth/agents-approle/login"] ?? 0;
    const h = await load(tokenConfig({ auth: { method: "approle", roleId, secretId: SECRET_ID, mount: "agents-approle" } }));
    expect(h.mnemonic()).toBe(MNEMONIC);
    expect(vault.requests()["POST /v1/auth/agents-approle/login"]).toBe(before + 1);
    expect(log.text()).toContain("Logged in to Vault with AppRole");
  });

  it("refuses a bad token with KEY_SOURCE_DENIED, naming neither token nor seed", async () => {
    const e = await failure(load(tokenConfig({ auth: { method: "token", token: "hvs.not-a-real-token" } })));
    expect(e.code).toBe("KEY_SOURCE_DENIED");
    expect(e.httpStatus).toBe(403);
    expect(e.message).toContain(`secret/${PATH}`);
    expect(e.details).toMatchObject({ status: 403, mount: "secret", path: PATH });
    expect(`${e.message}${JSON.stringify(e.details)}${inspect(e)}`).not.toContain("hvs.not-a-real-token");
    expectNoSecrets(e);
  });

  it("refuses a token whose policy does not cover the path", async () => {
    const t = vault.createToken({ policies: [] });
    const e = await failure(load(tokenConfig({ auth: { method: "token", token: t } })));
    expect(e.code).toBe("KEY_SOURCE_DENIED");
    expect(e.message).not.toContain(t);
  });

  it("refuses wrong AppRole credentials with KEY_SOURCE_DENIED", async () => {
    const { roleId } = vault.addAppRole({ roleName: "evm-wrong", secretId: "right-secret-id", policies: ["evm-agent"] });
    const e = await failure(load(tokenConfig({ auth: { method: "approle", roleId, secretId: SECRET_ID } })));
    expect(e.code).toBe("KEY_SOURCE_DENIED");
    expect(e.details).toMatchObject({ status: 400, op: "login", auth_mount: "approle" });
    expectNoSecrets(e);
  });

  it("reports a sealed Vault as KEY_SOURCE_UNAVAILABLE, retryable", async () => {
    vault.seal();
    const e = await failure(load(tokenConfig()));
    expect(e).toMatchObject({ code: "KEY_SOURCE_UNAVAILABLE", retryable: true, details: { status: 503, reason: "sealed" } });
    expect(e.message).toMatch(/sealed/);
    expectNoSecrets(e);
  });

  it("reports an unreachable Vault (closed port) as KEY_SOURCE_UNAVAILABLE", async () => {
    await vault.stopListening();
    const e = await failure(load(tokenConfig()));
    expect(e).toMatchObject({ code: "KEY_SOURCE_UNAVAILABLE", retryable: true, details: { reason: "ECONNREFUSED" } });
    expect(e.message).toContain("unreachable");
    expect(e.cause).toBeUndefined();
    expectNoSecrets(e);
  });

  it("gives up on a Vault that does not answer within timeoutMs", async () => {
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const port = (silent.address() as { port: number }).port;
      const started = Date.now();
      const e = await failure(load(tokenConfig({ address: `http://127.0.0.1:${port}`, timeoutMs: 300 })));
      expect(e.code).toBe("KEY_SOURCE_UNAVAILABLE");
      expect(e.details.reason).toMatch(/ECONNABORTED|ETIMEDOUT/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });

  it("reports a missing secret as KEY_SOURCE_NOT_FOUND", async () => {
    const e = await failure(load(tokenConfig({ path: "ponte/agents/solana", auth: { method: "token", token: vault.rootToken } })));
    expect(e).toMatchObject({ code: "KEY_SOURCE_NOT_FOUND", details: { status: 404, path: "ponte/agents/solana" } });
    expect(e.message).toContain("vault kv put -mount=secret ponte/agents/solana seed=");
  });

  it("reports a missing, non-string or malformed field as KEY_SOURCE_INVALID without the value", async () => {
    const root = { method: "token" as const, token: vault.rootToken };
    const missing = await failure(load(tokenConfig({ field: "mnemonic", auth: root })));
    expect(missing).toMatchObject({ code: "KEY_SOURCE_INVALID", details: { reason: "missing_field", fields: ["seed", "note"] } });
    vault.writeSecret("secret", "ponte/agents/odd", { seed: 42, bad: "correct horse battery staple" });
    expect((await failure(load(tokenConfig({ path: "ponte/agents/odd", auth: root })))).details.reason).toBe("field_not_string");
    const bad = await failure(load(tokenConfig({ path: "ponte/agents/odd", field: "bad", auth: root })));
    expect(bad.code).toBe("KEY_SOURCE_INVALID");
    expect(`${bad.message}${JSON.stringify(bad.details)}`).not.toContain("horse");
  });

  it("reads the latest of several versions, and refresh() follows new versions of the same seed", async () => {
    const path = "ponte/agents/versioned";
    const root = { method: "token" as const, token: vault.rootToken };
    vault.writeSecret("secret", path, { seed: OTHER_SEED });
    vault.writeSecret("secret", path, { seed: MNEMONIC });
    const h = await load(tokenConfig({ path, auth: root }));
    expect(h.version).toBe(2);
    expect(h.mnemonic()).toBe(MNEMONIC);
    vault.writeSecret("secret", path, { seed: MNEMONIC, rotated_by: "ops" });
    await h.refresh();
    expect(h.version).toBe(3);
    // A different seed is refused: the addresses already handed out belong to the loaded one.
    vault.writeSecret("secret", path, { seed: OTHER_SEED });
    const e = await failure(h.refresh());
    expect(e.details).toMatchObject({ reason: "seed_changed", version: 4 });
    expect(h.mnemonic()).toBe(MNEMONIC);
    expect(h.version).toBe(3);
    expectNoSecrets(e);
  });
});

describe("Vault lost after start-up", () => {
  it("fails signing closed while the seed stays usable for watching, and recovers", async () => {
    const h = await load(tokenConfig());
    await h.ensureFresh();
    let signed = 0;
    const sign = () => h.withSeed((s) => (signed++, s.seedBytes().length));
    expect(await sign()).toBe(64);

    await vault.stopListening();
    const e = await failure(sign());
    expect(e).toMatchObject({ code: "KEY_SOURCE_UNAVAILABLE", details: { reason: "ECONNREFUSED" } });
    expect(signed).toBe(1);
    // Watching (deriving addresses) does not go through Vault.
    expect(h.seedBytes().length).toBe(64);
    expect(log.text()).toContain("signing is refused");

    await vault.startListening();
    expect(await sign()).toBe(64);
    expect(signed).toBe(2);
    expectNoSecrets(e);
  });

  it("fails closed when Vault is sealed later, and when the token is revoked", async () => {
    const t = vault.createToken({ policies: ["evm-agent"], ttl: 3600 });
    const h = await load(tokenConfig({ auth: { method: "token", token: t } }));
    vault.seal();
    expect((await failure(h.ensureFresh())).details).toMatchObject({ status: 503, reason: "sealed" });
    vault.unseal();
    await h.ensureFresh();
    vault.revokeToken(t);
    const e = await failure(h.withSeed(() => "signed"));
    expect(e.code).toBe("KEY_SOURCE_DENIED");
    expect(e.message).toMatch(/revoked or has expired/);
    expect(e.message).not.toContain(t);
    expect(log.text()).not.toContain(t);
  });

  it("replaces a revoked AppRole token by logging in again, and fails closed when the secret_id is spent", async () => {
    const { roleId, secretId } = vault.addAppRole({ roleName: "evm-twice", policies: ["evm-agent"], secretIdNumUses: 2 });
    const h = await load(tokenConfig({ auth: { method: "approle", roleId, secretId } }));
    const logins = () => vault.requests()["POST /v1/auth/approle/login"] ?? 0;
    const before = logins();
    expect(vault.revokePrefix("auth/approle/")).toBeGreaterThan(0);
    await h.ensureFresh();
    expect(logins()).toBe(before + 1);
    expect(log.text()).toContain("logging in again");
    // The role allowed two logins; the third is refused.
    vault.revokePrefix("auth/approle/");
    expect((await failure(h.ensureFresh())).code).toBe("KEY_SOURCE_DENIED");
    expectNoSecrets();
  });

  it("renews a token past half its TTL while validating it", async () => {
    const t = vault.createToken({ policies: ["evm-agent"], ttl: 3600 });
    const h = await load(tokenConfig({ auth: { method: "token", token: t } }));
    vault.expireToken(t, 60);
    await h.ensureFresh();
    expect(log.text()).toContain("Renewed the Vault token");
    const look = await fetch(`${vault.url}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": t } });
    expect((((await look.json()) as any).data.ttl as number) > 3000).toBe(true);
  });

  it("shares one Vault round trip between concurrent checks", async () => {
    const h = await load(tokenConfig());
    const before = vault.requests()["GET /v1/auth/token/lookup-self"] ?? 0;
    await Promise.all(Array.from({ length: 5 }, () => h.ensureFresh()));
    expect(vault.requests()["GET /v1/auth/token/lookup-self"]).toBe(before + 1);
  });
});
