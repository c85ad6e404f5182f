import { ConfigError } from "@ponte/common";
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CHAINS, coinsToSats, parseUtxoConfig } from "../index.js";

const dir = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..", "config");
const example = (name: string) => JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8")) as Record<string, unknown>;
const env = { LTC_RPC_USER: "user", LTC_RPC_PASSWORD: "secret-password", BTC_RPC_COOKIE_FILE: "/tmp/.cookie" };

function issues(json: unknown, e: NodeJS.ProcessEnv = env): string[] {
  try {
    parseUtxoConfig(json, e);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.field}: ${i.message}`);
    throw err;
  }
  return [];
}

describe("UTXO agent config", () => {
  it("parses the shipped examples with their network parameters", () => {
    const ltc = parseUtxoConfig(example("litecoin"), env);
    expect(ltc.chain).toBe(CHAINS.litecoin);
    expect(ltc.confirmations).toBe(6);
    expect(ltc.rpc.auth).toEqual({ kind: "password", user: "user", password: "secret-password" });
    const btc = parseUtxoConfig(example("bitcoin"), env);
    expect(btc.chain.network.bech32).toBe("bc");
    expect(btc.confirmations).toBe(3);
    expect(btc.rpc.auth).toEqual({ kind: "cookie", file: "/tmp/.cookie" });
    const reg = parseUtxoConfig(example("litecoin-regtest"), {});
    expect(reg.chain.network).toMatchObject({ bech32: "rltc", pubKeyHash: 0x6f, scriptHash: 0x3a, wif: 0xef });
    expect(reg.startHeight).toBe(0n);
    expect(reg.fees.fallbackSatVb).toBe(10n);
  });

  it("names each bad field and never repeats a secret", () => {
    const base = example("litecoin");
    expect(issues({ ...base, chain: "dogecoin" })[0]).toMatch(/^chain: must be one of bitcoin/);
    expect(issues({ ...base, rpc: { url: "127.0.0.1:9332", user: "u", password: "p" } })).toEqual(["rpc.url: must be an http(s) URL"]);
    expect(issues({ ...base, rpc: { url: "http://x:1", user: "u" } })).toEqual(["rpc.password: user and password go together"]);
    expect(issues({ ...base, rpc: { url: "http://x:1", cookie_file: "/c", user: "u", password: "p" } })).toEqual(["rpc: use either user/password or cookie_file, not both"]);
    expect(issues({ ...base, cold_wallet: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" })).toEqual(["cold_wallet: is not a litecoin address"]);
    expect(issues({ ...base, reorg_window: 3 })).toEqual(["reorg_window: must be at least the 6 confirmations of finality"]);
    expect(issues({ ...base, fees: { floor_sat_vb: 50, max_sat_vb: 10 } })).toContain("fees.floor_sat_vb: is above fees.max_sat_vb");
    expect(issues(base, {})).toEqual(["rpc.user: environment variable LTC_RPC_USER is not set", "rpc.password: environment variable LTC_RPC_PASSWORD is not set"]);
    const all = issues({ ...base, chain: "x", rpc: { url: "nope", user: "u", password: "secret-password" } }).join("\n");
    expect(all).not.toContain("secret-password");
  });

  it("reads amounts exactly as satoshis", () => {
    expect(coinsToSats("0.00100000")).toBe(100_000n);
    expect(coinsToSats("20999999.97690000")).toBe(2_099_999_997_690_000n);
    expect(coinsToSats("1")).toBe(100_000_000n);
    expect(() => coinsToSats("0.000000001")).toThrow();
  });
});
