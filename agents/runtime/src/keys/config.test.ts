import { describe, expect, it } from "vitest";
import { ConfigError, PonteError } from "@ponte/common";
import { loadSeedConfig, parseSeedMaterial } from "./index.js";

const fields = (f: () => unknown): Record<string, string> => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return Object.fromEntries((e as ConfigError).issues.map((i) => [i.field, i.message]));
  }
  throw new Error("expected a ConfigError");
};

describe("loadSeedConfig", () => {
  it("reads a token-auth Vault source with defaults", () => {
    expect(loadSeedConfig({ SEED_SOURCE: "vault", VAULT_ADDR: "http://127.0.0.1:8200", VAULT_TOKEN: "hvs.x\n", VAULT_SEED_PATH: "ponte/agents/evm" })).toEqual({
      source: "vault",
      address: "http://127.0.0.1:8200",
      mount: "secret",
      path: "ponte/agents/evm",
      field: "seed",
      auth: { method: "token", token: "hvs.x" },
      timeoutMs: 5000,
    });
  });

  it("reads AppRole auth, a custom mount and the family's default path", () => {
    const c = loadSeedConfig(
      { SEED_SOURCE: "vault", VAULT_ADDR: "https://vault:8200", VAULT_ROLE_ID: "r", VAULT_SECRET_ID: "s", VAULT_APPROLE_MOUNT: "agents", VAULT_KV_MOUNT: "kv", VAULT_SEED_FIELD: "mnemonic", VAULT_TOKEN: "" },
      { defaultPath: "ponte/agents/bitcoin" },
    );
    expect(c).toMatchObject({ mount: "kv", path: "ponte/agents/bitcoin", field: "mnemonic", auth: { method: "approle", roleId: "r", secretId: "s", mount: "agents" } });
  });

  it("reads a keystore source", () => {
    expect(loadSeedConfig({ SEED_SOURCE: "keystore", KEYSTORE_FILE: "dev.json", KEYSTORE_PASSPHRASE: "p" })).toEqual({ source: "keystore", file: "dev.json", passphrase: "p" });
  });

  it("names every missing or wrong variable, and never repeats a secret", () => {
    expect(fields(() => loadSeedConfig({}))).toHaveProperty("SEED_SOURCE");
    expect(Object.keys(fields(() => loadSeedConfig({ SEED_SOURCE: "vault" })))).toEqual(expect.arrayContaining(["VAULT_ADDR", "VAULT_SEED_PATH", "VAULT_TOKEN"]));
    expect(Object.keys(fields(() => loadSeedConfig({ SEED_SOURCE: "keystore" })))).toEqual(["KEYSTORE_FILE", "KEYSTORE_PASSPHRASE"]);
    const both = fields(() => loadSeedConfig({ SEED_SOURCE: "vault", VAULT_ADDR: "http://v:8200", VAULT_SEED_PATH: "p", VAULT_TOKEN: "hvs.secret-token", VAULT_ROLE_ID: "r", VAULT_SECRET_ID: "secret-id-value" }));
    expect(both.VAULT_TOKEN).toMatch(/not both/);
    expect(JSON.stringify(both)).not.toMatch(/hvs\.secret-token|secret-id-value/);
    expect(fields(() => loadSeedConfig({ SEED_SOURCE: "vault", VAULT_ADDR: "http://v:8200", VAULT_SEED_PATH: "p", VAULT_ROLE_ID: "r" }))).toHaveProperty("VAULT_SECRET_ID");
    expect(fields(() => loadSeedConfig({ SEED_SOURCE: "vault", VAULT_ADDR: "not a url", VAULT_SEED_PATH: "../x", VAULT_TOKEN: "t" }))).toMatchObject({
      VAULT_ADDR: expect.stringContaining("URL"),
      VAULT_SEED_PATH: expect.stringContaining("segments"),
    });
    expect(fields(() => loadSeedConfig({ SEED_SOURCE: "hsm" }))).toHaveProperty("SEED_SOURCE");
  });
});

describe("parseSeedMaterial", () => {
  const where = { source: "vault", mount: "secret", path: "ponte/agents/evm", field: "seed" };

  it("computes the BIP39 seed of a mnemonic and normalises its spacing", () => {
    const m = parseSeedMaterial("  abandon abandon abandon abandon abandon abandon\nabandon abandon abandon  abandon abandon about \n", where);
    expect(m.kind).toBe("mnemonic");
    expect(m.phrase?.toString()).toBe("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about");
    expect(m.seed.toString("hex")).toBe(
      "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc19a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4",
    );
    expect(m.fingerprint).toMatch(/^[0-9a-f]{8}$/);
  });

  it("accepts hex seeds of 16 to 64 bytes, with or without 0x", () => {
    expect(parseSeedMaterial(`0x${"ab".repeat(32)}`, where)).toMatchObject({ kind: "hex", phrase: null });
    expect(parseSeedMaterial("ab".repeat(64), where).seed.length).toBe(64);
  });

  it("refuses malformed values without repeating them", () => {
    for (const bad of ["ab".repeat(15), "ab".repeat(65), "abc", "one two three", "p4ssw0rd with digits in it and so on ok ok ok", ""]) {
      let err: unknown;
      try {
        parseSeedMaterial(bad, where);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PonteError);
      expect((err as PonteError).code).toBe("KEY_SOURCE_INVALID");
      if (bad.length > 3) expect((err as PonteError).message + JSON.stringify((err as PonteError).details)).not.toContain(bad);
      expect((err as PonteError).message).toContain("secret/ponte/agents/evm");
    }
  });
});
