// Where the EVM agent's seed comes from (SEED_SOURCE) and the transfer settings of the config
// file. The seed itself is read by loadSeed() at start; here only its source is chosen.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadSeed } from "@ponte/agent-runtime/keys";
import { ConfigError, createLogger, PonteError } from "@ponte/common";
import { describe, expect, it } from "vitest";
import { createEvmKeys } from "../keys/index.js";
import { loadEvmConfig, parseEvmConfig, transferSettings } from "./index.js";

const configDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "config");
const MNEMONIC = "test test test test test test test test test test test junk";
const base = () => JSON.parse(readFileSync(join(configDir, "anvil.json"), "utf8")) as Record<string, unknown>;
const file = (json: Record<string, unknown>) => {
  const f = join(mkdtempSync(join(tmpdir(), "ponte-evm-seed-")), "anvil.json");
  writeFileSync(f, JSON.stringify(json));
  return f;
};
function fields(fn: () => unknown): Record<string, string> {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return Object.fromEntries(err.issues.map((i) => [i.field, i.message]));
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("EVM seed source", () => {
  it("reads EVM_SEED_MNEMONIC only through SEED_SOURCE=env, and Vault with the EVM default path", () => {
    const f = file(base());
    expect(loadEvmConfig({ EVM_CONFIG: f, SEED_SOURCE: "env", EVM_SEED_MNEMONIC: MNEMONIC }).seed).toEqual({ source: "env", variable: "EVM_SEED_MNEMONIC", value: MNEMONIC });
    expect(loadEvmConfig({ EVM_CONFIG: f, SEED_SOURCE: "vault", VAULT_ADDR: "https://vault.internal:8200", VAULT_TOKEN: "t" }).seed).toMatchObject({
      source: "vault",
      mount: "secret",
      path: "ponte/agents/evm",
      field: "seed",
    });
    // The old variable alone no longer chooses a source.
    expect(fields(() => loadEvmConfig({ EVM_CONFIG: f, EVM_SEED_MNEMONIC: MNEMONIC }))).toHaveProperty("SEED_SOURCE");
    expect(fields(() => loadEvmConfig({ EVM_CONFIG: f, SEED_SOURCE: "env" }))).toEqual({ EVM_SEED_MNEMONIC: "is required when SEED_SOURCE=env" });
    const prod = fields(() => loadEvmConfig({ EVM_CONFIG: f, SEED_SOURCE: "env", EVM_SEED_MNEMONIC: MNEMONIC, NODE_ENV: "production" }));
    expect(prod.SEED_SOURCE).toMatch(/refused when NODE_ENV=production/);
    expect(JSON.stringify(prod)).not.toContain("test test");
    // The file is checked first: its errors name the file.
    expect(Object.keys(fields(() => loadEvmConfig({ EVM_CONFIG: file({ ...base(), finality: "soon" }), SEED_SOURCE: "env", EVM_SEED_MNEMONIC: MNEMONIC }))))
      .toEqual([expect.stringMatching(/anvil\.json: finality$/)]);
  });

  it("refuses a mnemonic with a bad checksum at start, without echoing it", async () => {
    const bad = "test test test test test test test test test test test test";
    const seed = await loadSeed({ source: "env", variable: "EVM_SEED_MNEMONIC", value: bad }, createLogger({ name: "seed-test", level: "silent" }));
    const err = await createEvmKeys(seed).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PonteError);
    expect(err).toMatchObject({ code: "KEY_SOURCE_INVALID", details: { reason: "mnemonic_checksum", key_ref: "env:EVM_SEED_MNEMONIC" } });
    expect(`${(err as Error).message}${JSON.stringify((err as PonteError).details)}`).not.toContain("test test");
  });

  it("derives the hot wallet at m/44'/60'/1'/0/0 and signs only for its own addresses", async () => {
    const seed = await loadSeed({ source: "env", variable: "EVM_SEED_MNEMONIC", value: MNEMONIC }, createLogger({ name: "seed-test", level: "silent" }));
    const keys = await createEvmKeys(seed);
    expect(keys.hot).toEqual({ address: "0x8C8d35429F74ec245F8Ef2f4Fd1e551cFF97d650", path: "m/44'/60'/1'/0/0" });
    expect(keys.deriver.derive(0).address).toBe("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    expect(keys.keyFor(keys.hot.address.toLowerCase(), 7)).toEqual({ role: "hot", address: keys.hot.address, path: keys.hot.path });
    expect(keys.keyFor("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", 0)).toMatchObject({ role: "deposit", path: "m/44'/60'/0'/0/0" });
    expect(keys.keyFor("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", 1)).toBeNull();
    expect(keys.keyFor("not an address", 0)).toBeNull();
    await seed.close();
    await expect(keys.sign({ role: "hot", ...keys.hot }, { to: keys.hot.address, chainId: 1n, nonce: 0, gasLimit: 21_000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n, type: 2 })).rejects.toMatchObject({
      code: "KEY_SOURCE_UNAVAILABLE",
    });
  });
});

describe("EVM transfer settings", () => {
  it("reads the cap in gwei (fractions too), the cold wallet, the ceiling, with defaults", () => {
    const c = parseEvmConfig({
      ...base(),
      max_fee_per_gas_gwei: 0.5,
      replace_after_blocks: 7,
      cold_wallet: "0x8ba1f109551bd432803012645ac136ddd64dba72",
      hot_ceiling: "5000000000000000000",
    });
    expect(transferSettings(c)).toEqual({
      coldWallet: "0x8ba1f109551bD432803012645Ac136ddd64DBA72",
      hotCeiling: 5_000_000_000_000_000_000n,
      maxFeePerGas: 500_000_000n,
      replaceAfterBlocks: 7,
      erc20GasLimit: 65_000n,
      balanceIntervalMs: 5_000,
    });
    const { max_fee_per_gas_gwei: _cap, replace_after_blocks: _r, balance_interval_ms: _b, ...bare } = base();
    expect(transferSettings(parseEvmConfig(bare))).toMatchObject({ maxFeePerGas: 500_000_000_000n, replaceAfterBlocks: 12, coldWallet: null, hotCeiling: null, balanceIntervalMs: 30_000 });
    expect(fields(() => parseEvmConfig({ ...base(), cold_wallet: "0x123", hot_ceiling: "1.5" }))).toEqual({
      cold_wallet: "must be a 0x-prefixed 20-byte address (with a valid EIP-55 checksum when mixed-case)",
      hot_ceiling: "must be a decimal string of native base units (wei)",
    });
  });
});
