import { ConfigError } from "@ponte/common";
import { createLogger } from "@ponte/common";
import { describe, expect, it } from "vitest";
import { loadSeed, loadSeedConfig } from "./index.js";

const MNEMONIC = "test test test test test test test test test test test junk";
const issues = (f: () => unknown): Record<string, string> => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return Object.fromEntries((e as ConfigError).issues.map((i) => [i.field, i.message]));
  }
  throw new Error("expected a ConfigError");
};

describe("the development key source (SEED_SOURCE=env)", () => {
  it("reads the family's variable, only when chosen explicitly, never in production", async () => {
    const cfg = loadSeedConfig({ SEED_SOURCE: "env", EVM_SEED_MNEMONIC: MNEMONIC, VAULT_ADDR: "http://vault.internal:8200" }, { devSeedVariable: "EVM_SEED_MNEMONIC" });
    expect(cfg).toEqual({ source: "env", variable: "EVM_SEED_MNEMONIC", value: MNEMONIC });
    const h = await loadSeed(cfg, createLogger({ name: "env-test", level: "silent" }));
    expect(h).toMatchObject({ source: "env", ref: "env:EVM_SEED_MNEMONIC", kind: "mnemonic" });
    expect(h.mnemonic()).toBe(MNEMONIC);
    await expect(h.withSeed((s) => s.kind)).resolves.toBe("mnemonic");
    expect(JSON.stringify(h)).not.toContain("test test");
    await h.close();
    await expect(h.withSeed(() => 1)).rejects.toMatchObject({ code: "KEY_SOURCE_UNAVAILABLE" });

    // The variable alone does not select it.
    expect(issues(() => loadSeedConfig({ EVM_SEED_MNEMONIC: MNEMONIC }))).toHaveProperty("SEED_SOURCE");
    expect(issues(() => loadSeedConfig({ SEED_SOURCE: "env" }, { devSeedVariable: "EVM_SEED_MNEMONIC" }))).toEqual({
      EVM_SEED_MNEMONIC: "is required when SEED_SOURCE=env",
    });
    const prod = issues(() => loadSeedConfig({ SEED_SOURCE: "env", NODE_ENV: "production", EVM_SEED_MNEMONIC: MNEMONIC }, { devSeedVariable: "EVM_SEED_MNEMONIC" }));
    expect(prod.SEED_SOURCE).toMatch(/refused when NODE_ENV=production/);
    expect(JSON.stringify(prod)).not.toContain("test test");
  });
});
