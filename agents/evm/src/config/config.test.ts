import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "@ponte/common";
import { describe, expect, it } from "vitest";
import { loadEvmConfig, parseEvmConfig, transferSettings } from "./index.js";

const configDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "config");
const MNEMONIC = "test test test test test test test test test test test junk";
const base = () => JSON.parse(readFileSync(join(configDir, "anvil.json"), "utf8")) as Record<string, unknown>;

/** The ConfigError's issues, or fails the test. */
function issues(fn: () => unknown): { field: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("EVM config", () => {
  it("parses every shipped example with its placeholders filled from the environment", () => {
    const files = readdirSync(configDir).filter((f) => f.endsWith(".json"));
    expect(files.sort()).toEqual(["anvil.json", "arbitrum.json", "avalanche.json", "base.json", "bsc.json", "ethereum.json", "optimism.json", "polygon.json"]);
    const chainIds: Record<string, bigint> = { ethereum: 1n, polygon: 137n, bsc: 56n, base: 8453n, arbitrum: 42161n, optimism: 10n, avalanche: 43114n, anvil: 31337n };
    for (const f of files) {
      const net = f.replace(".json", "");
      const env = { [`${net.toUpperCase()}_RPC_HTTP`]: "https://user:key@rpc.example.com/v2/abc" };
      const c = parseEvmConfig(JSON.parse(readFileSync(join(configDir, f), "utf8")), env);
      expect(c.network).toBe(net);
      expect(c.chainId).toBe(chainIds[net]);
      expect(c.rpc.length).toBeGreaterThan(0);
      if (net !== "anvil") {
        expect(c.rpc[0]!.http).toBe("https://user:key@rpc.example.com/v2/abc");
        expect(c.rpc[0]!.ws).toBeUndefined(); // ${X_RPC_WS:-} unset: no ws on that endpoint
        expect(c.rpc[1]!.ws).toMatch(/^wss:\/\//);
        expect(c.tokens.map((t) => t.symbol)).toContain("USDC");
      }
    }
  });

  it("uses the same token contracts as the coordinator's mainnet registry", () => {
    const registryPath = join(configDir, "..", "..", "..", "coordinator", "assets", "mainnet.json");
    const registry = JSON.parse(readFileSync(registryPath, "utf8")) as { assets: { network: string; symbol: string; contract?: string; decimals: number }[] };
    for (const f of readdirSync(configDir).filter((x) => x.endsWith(".json") && x !== "anvil.json")) {
      const net = f.replace(".json", "");
      const c = parseEvmConfig(JSON.parse(readFileSync(join(configDir, f), "utf8")), { [`${net.toUpperCase()}_RPC_HTTP`]: "https://rpc.example.com" });
      const expected = registry.assets.filter((a) => a.network === net && a.contract).map((a) => ({ symbol: a.symbol, contract: a.contract, decimals: a.decimals }));
      expect(c.tokens, net).toEqual(expected);
    }
  });

  it("names the field of a bad URL", () => {
    const c = base();
    c.rpc = [{ http: "not a url" }, { http: "ftp://x.example", ws: "https://x.example" }];
    expect(issues(() => parseEvmConfig(c))).toEqual([
      { field: "rpc.0.http", message: "must be an http(s) URL" },
      { field: "rpc.1.http", message: "must be an http(s) URL" },
      { field: "rpc.1.ws", message: "must be a ws(s) URL" },
    ]);
  });

  it("names a duplicate token, by contract and by symbol", () => {
    const c = base();
    c.tokens = [
      { symbol: "USDT", contract: "0xdAC17F958D2ee523a2206206994597C13D831ec7", decimals: 6 },
      { symbol: "USDX", contract: "0xdac17f958d2ee523a2206206994597c13d831ec7", decimals: 6 },
      { symbol: "usdt", contract: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", decimals: 6 },
    ];
    expect(issues(() => parseEvmConfig(c))).toEqual([
      { field: "tokens.1.contract", message: "duplicate token: same contract as tokens.0" },
      { field: "tokens.2.symbol", message: "duplicate token: same symbol as tokens.0" },
    ]);
  });

  it("names an unknown finality rule", () => {
    for (const finality of ["safe", { blocks: 12 }, 12]) {
      const c = base();
      c.finality = finality;
      expect(issues(() => parseEvmConfig(c))).toEqual([{ field: "finality", message: 'unknown finality rule: use "finalized" or {"confirmations": n}' }]);
    }
    const c = base();
    c.finality = { confirmations: 0 };
    expect(issues(() => parseEvmConfig(c))[0]!.field).toBe("finality.confirmations");
    c.finality = "finalized";
    expect(parseEvmConfig(c).finality).toEqual({ kind: "finalized" });
  });

  it("reads the fee cap in gwei exactly, from a number or a decimal string, and names a bad one", () => {
    const cap = (v: unknown) => {
      const c = base();
      c.max_fee_per_gas_gwei = v;
      return transferSettings(parseEvmConfig(c)).maxFeePerGas;
    };
    expect(cap(0.5)).toBe(500_000_000n);
    expect(cap("0.000000001")).toBe(1n);
    expect(cap("123.456789012")).toBe(123_456_789_012n);
    expect(cap(2000)).toBe(2_000_000_000_000n);
    for (const bad of [0, "0.0", -1, "1e-7", 1e-7, "0.1234567891", "abc", 2_000_000]) {
      const c = base();
      c.max_fee_per_gas_gwei = bad;
      expect(issues(() => parseEvmConfig(c))[0]!.field, String(bad)).toBe("max_fee_per_gas_gwei");
    }
  });

  it("rejects a contract with a bad checksum, unknown keys, and unset environment variables", () => {
    const c = base();
    c.tokens = [{ symbol: "USDT", contract: "0xdAC17F958D2ee523a2206206994597C13D831eC7", decimals: 6 }];
    c.batchsize = 5;
    expect(issues(() => parseEvmConfig(c)).map((i) => i.field)).toEqual(["tokens.0.contract", "(root)"]);
    const d = base();
    d.rpc = [{ http: "${NOT_SET_ANYWHERE}" }];
    expect(issues(() => parseEvmConfig(d, {}))).toEqual([{ field: "rpc.0.http", message: "environment variable NOT_SET_ANYWHERE is not set" }]);
  });

  it("names EVM_CONFIG when it is missing and the field when the file is wrong (the seed is seed.test.ts's)", () => {
    const dir = mkdtempSync(join(tmpdir(), "ponte-evm-config-"));
    const file = join(dir, "anvil.json");
    writeFileSync(file, JSON.stringify(base()));
    const ok = loadEvmConfig({ EVM_CONFIG: file, SEED_SOURCE: "env", EVM_SEED_MNEMONIC: MNEMONIC });
    expect(ok.seed.source).toBe("env");
    expect(ok.config.startHeight).toBe(0n);
    expect(issues(() => loadEvmConfig({ SEED_SOURCE: "env", EVM_SEED_MNEMONIC: MNEMONIC }))[0]!.field).toBe("EVM_CONFIG");
    const broken = join(dir, "broken.json");
    writeFileSync(broken, JSON.stringify({ ...base(), finality: "soon" }));
    expect(issues(() => loadEvmConfig({ EVM_CONFIG: broken, SEED_SOURCE: "env", EVM_SEED_MNEMONIC: MNEMONIC }))[0]!.field).toBe(`${broken}: finality`);
  });

  it("applies ASSET_CONTRACT_OVERRIDES for its own network only", () => {
    const dir = mkdtempSync(join(tmpdir(), "ponte-evm-config-"));
    const file = join(dir, "anvil.json");
    writeFileSync(file, JSON.stringify(base()));
    const token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    const { config } = loadEvmConfig({
      EVM_CONFIG: file,
      SEED_SOURCE: "env",
      EVM_SEED_MNEMONIC: MNEMONIC,
      ASSET_CONTRACT_OVERRIDES: JSON.stringify({ "anvil:USDT": token.toLowerCase(), "polygon:USDC": "0x00" }),
    });
    expect(config.tokens[0]!.contract).toBe(token);
    const e = issues(() => loadEvmConfig({ EVM_CONFIG: file, SEED_SOURCE: "env", EVM_SEED_MNEMONIC: MNEMONIC, ASSET_CONTRACT_OVERRIDES: '{"anvil:DAI":"0x01"}' }));
    expect(e).toEqual([{ field: "ASSET_CONTRACT_OVERRIDES.anvil:DAI", message: "no token DAI in the anvil config" }]);
  });
});
