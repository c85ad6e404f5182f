import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "@ponte/common";
import {
  applyContractOverrides,
  confirmationsFor,
  loadAssetRegistry,
  parseAssetRegistry,
  parseContractOverrides,
} from "./registry.js";

const USDT = "0xc2132D05D31c914a87C6611C10748AEb04B58e8F";

const entry = (over: Record<string, unknown> = {}) => ({
  network: "polygon",
  family: "evm",
  symbol: "USDT",
  name: "Tether USD",
  decimals: 6,
  contract: USDT,
  min_amount: "5",
  max_amount: "1000",
  confirmations: 128,
  price_key: "USDT",
  ...over,
});
const native = (over: Record<string, unknown> = {}) =>
  entry({ symbol: "POL", name: "POL", decimals: 18, contract: undefined, price_key: "POL", ...over });

/** The ConfigError's issues, or fails the test when parsing succeeds. */
function issuesOf(assets: unknown[]): { field: string; message: string }[] {
  try {
    parseAssetRegistry({ assets });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error("expected a ConfigError");
}

describe("parseAssetRegistry", () => {
  it("parses an entry, applying defaults and lowercasing the EVM contract", () => {
    const r = parseAssetRegistry({ assets: [entry(), native()] });
    const a = r.get("USDT", "polygon");
    expect(a).toEqual({
      id: "polygon:USDT",
      symbol: "USDT",
      network: "polygon",
      family: "evm",
      name: "Tether USD",
      decimals: 6,
      contract: USDT.toLowerCase(),
      minAmount: 5_000_000n,
      maxAmount: 1_000_000_000n,
      confirmations: 128,
      enabled: true,
      spreadBps: 300n,
      networkFeeBps: 25n,
      priceKey: "USDT",
    });
    expect(r.get("POL", "polygon").contract).toBeUndefined();
    expect(Object.isFrozen(a)).toBe(true);
  });

  it("reads explicit spread, fee, enabled and the high-confirmation threshold", () => {
    const r = parseAssetRegistry({
      assets: [
        {
          network: "bitcoin",
          family: "utxo",
          symbol: "BTC",
          name: "Bitcoin",
          decimals: 8,
          min_amount: "0.0001",
          max_amount: "5",
          confirmations: 3,
          confirmations_high: { above_brl: "50000", confirmations: 6 },
          enabled: false,
          spread_percent: "2.5",
          network_fee_percent: "0",
          price_key: "BTC",
        },
      ],
    });
    const btc = r.find("BTC", "bitcoin")!;
    expect(btc.spreadBps).toBe(250n);
    expect(btc.networkFeeBps).toBe(0n);
    expect(btc.enabled).toBe(false);
    expect(btc.confirmationsHigh).toEqual({ aboveCentavos: 5_000_000n, confirmations: 6 });
    expect(btc.minAmount).toBe(10_000n);
  });

  it("rejects a duplicate (network, symbol)", () => {
    const issues = issuesOf([entry(), entry({ contract: "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359" })]);
    expect(issues).toEqual([
      { field: "assets[1](polygon:USDT).symbol", message: expect.stringContaining("duplicates polygon:USDT") },
    ]);
  });

  it("allows the same symbol on another network", () => {
    const r = parseAssetRegistry({ assets: [entry(), entry({ network: "ethereum" })] });
    expect(r.list().map((a) => a.id)).toEqual(["polygon:USDT", "ethereum:USDT"]);
  });

  it("rejects a duplicate contract on one network, whatever its case", () => {
    const issues = issuesOf([entry(), entry({ symbol: "USDC", price_key: "USDC", contract: USDT.toLowerCase() })]);
    expect(issues).toEqual([
      { field: "assets[1](polygon:USDC).contract", message: expect.stringContaining("contract already used on polygon") },
    ]);
  });

  it("rejects min_amount above max_amount", () => {
    const issues = issuesOf([entry({ min_amount: "1000.000001" })]);
    expect(issues).toEqual([{ field: "assets[0](polygon:USDT).min_amount", message: expect.stringContaining("max_amount") }]);
  });

  it("accepts min_amount equal to max_amount", () => {
    expect(() => parseAssetRegistry({ assets: [entry({ min_amount: "1000" })] })).not.toThrow();
  });

  it("rejects a zero min_amount", () => {
    expect(issuesOf([entry({ min_amount: "0" })])[0]!.field).toBe("assets[0](polygon:USDT).min_amount");
  });

  it("rejects an amount with more decimals than the asset", () => {
    const issues = issuesOf([entry({ max_amount: "1000.0000001" })]);
    expect(issues).toEqual([
      { field: "assets[0](polygon:USDT).max_amount", message: expect.stringContaining("more than 6 decimal places") },
    ]);
  });

  it("rejects amounts that are not decimal strings (numbers would pass through floats)", () => {
    const issues = issuesOf([entry({ min_amount: 5, max_amount: "1e3" })]);
    expect(issues.map((i) => i.field).sort()).toEqual([
      "assets[0](polygon:USDT).max_amount",
      "assets[0](polygon:USDT).min_amount",
    ]);
  });

  it.each([-1, 37, 6.5])("rejects decimals %s", (decimals) => {
    const issues = issuesOf([entry({ decimals })]);
    expect(issues).toEqual([{ field: "assets[0](polygon:USDT).decimals", message: expect.any(String) }]);
  });

  it.each([0, 36])("accepts decimals %s", (decimals) => {
    expect(() => parseAssetRegistry({ assets: [entry({ decimals })] })).not.toThrow();
  });

  it("rejects spread + fee of 100 % or more", () => {
    const issues = issuesOf([entry({ spread_percent: "99.75", network_fee_percent: "0.25" })]);
    expect(issues).toEqual([
      { field: "assets[0](polygon:USDT).spread_percent", message: expect.stringContaining("below 100") },
    ]);
    expect(() =>
      parseAssetRegistry({ assets: [entry({ spread_percent: "99.74", network_fee_percent: "0.25" })] }),
    ).not.toThrow();
  });

  it("rejects a percentage with more than two decimals", () => {
    expect(issuesOf([entry({ spread_percent: "3.001" })])[0]!.field).toBe("assets[0](polygon:USDT).spread_percent");
  });

  it("rejects a malformed EVM contract and the zero address", () => {
    expect(issuesOf([entry({ contract: "0x1234" })])).toEqual([
      { field: "assets[0](polygon:USDT).contract", message: expect.stringContaining("40-hex") },
    ]);
    expect(issuesOf([entry({ contract: `0x${"0".repeat(40)}` })])[0]!.message).toContain("zero address");
  });

  it("rejects a contract on a UTXO asset", () => {
    const issues = issuesOf([
      entry({ network: "bitcoin", family: "utxo", symbol: "BTC", price_key: "BTC", decimals: 8, contract: USDT }),
    ]);
    expect(issues).toEqual([{ field: "assets[0](bitcoin:BTC).contract", message: "UTXO assets have no contract" }]);
  });

  it("checks Solana mints are base58 32-byte keys and keeps their case", () => {
    const sol = (contract: string) =>
      entry({ network: "solana", family: "solana", symbol: "USDC", price_key: "USDC", confirmations: 1, contract });
    const mint = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
    expect(parseAssetRegistry({ assets: [sol(mint)] }).get("USDC", "solana").contract).toBe(mint);
    // Solana addresses carry no checksum: only the decoded length can be checked.
    expect(issuesOf([sol("EPjFWdd5AufqSSqeM2qN1xzy")])[0]!.message).toContain("32-byte");
    expect(issuesOf([sol(`${mint}zz`)])[0]!.message).toContain("32-byte");
    expect(issuesOf([sol("0OIl")])[0]!.message).toContain("base58");
  });

  it("rejects two native assets on one network", () => {
    const issues = issuesOf([native(), native({ symbol: "MATIC" })]);
    expect(issues).toEqual([{ field: "assets[1](polygon:MATIC).contract", message: expect.stringContaining("native asset") }]);
  });

  it("rejects two families on one network", () => {
    const issues = issuesOf([native(), entry({ family: "solana", contract: undefined, symbol: "X", price_key: "X" })]);
    expect(issues.some((i) => i.field === "assets[1](polygon:X).family")).toBe(true);
  });

  it("rejects confirmations_high not above confirmations", () => {
    const issues = issuesOf([entry({ confirmations_high: { above_brl: "50000", confirmations: 128 } })]);
    expect(issues).toEqual([
      { field: "assets[0](polygon:USDT).confirmations_high.confirmations", message: expect.stringContaining("greater") },
    ]);
  });

  it("rejects unknown fields (a typo must not silently fall back to a default)", () => {
    const issues = issuesOf([entry({ spread_percnt: "1" })]);
    expect(issues).toEqual([{ field: "assets[0](polygon:USDT)", message: expect.stringContaining("spread_percnt") }]);
  });

  it("names missing fields, and the entry by index when it has no name yet", () => {
    const { network: _n, ...noNetwork } = entry();
    expect(issuesOf([noNetwork])).toEqual([{ field: "assets[0].network", message: expect.any(String) }]);
  });

  it("reports every bad field of every asset at once", () => {
    const issues = issuesOf([entry({ decimals: 99 }), native({ min_amount: "2", max_amount: "1" })]);
    expect(issues.map((i) => i.field)).toEqual(["assets[0](polygon:USDT).decimals", "assets[1](polygon:POL).min_amount"]);
  });

  it("rejects a file without assets", () => {
    expect(() => parseAssetRegistry({ assets: [] })).toThrow(ConfigError);
    expect(() => parseAssetRegistry([entry()])).toThrow(ConfigError);
  });
});

describe("AssetRegistry", () => {
  const r = parseAssetRegistry({ assets: [entry(), native({ enabled: false })] });

  it("finds assets case-insensitively", () => {
    expect(r.get("usdt", "Polygon").id).toBe("polygon:USDT");
  });

  it("throws ASSET_NOT_FOUND for an unknown pair", () => {
    expect(() => r.get("USDT", "tron")).toThrow(expect.objectContaining({ code: "ASSET_NOT_FOUND" }));
    expect(r.find("USDT", "tron")).toBeUndefined();
  });

  it("throws ASSET_DISABLED for a disabled asset, which find still returns", () => {
    expect(() => r.get("POL", "polygon")).toThrow(expect.objectContaining({ code: "ASSET_DISABLED" }));
    expect(r.find("POL", "polygon")?.enabled).toBe(false);
  });

  it("lists per network, disabled assets included", () => {
    expect(r.byNetwork("polygon").map((a) => a.symbol)).toEqual(["USDT", "POL"]);
    expect(r.byNetwork("bsc")).toEqual([]);
  });
});

describe("contract overrides", () => {
  const base = () =>
    parseAssetRegistry({
      assets: [
        entry({ network: "anvil", contract: "0x0000000000000000000000000000000000000001", confirmations: 2 }),
        native({ network: "anvil", symbol: "ETH", price_key: "ETH", confirmations: 2 }),
      ],
    });

  it("replaces a token contract, lowercased", () => {
    const r = applyContractOverrides(base(), { "anvil:USDT": "0x5FbDB2315678afecb367f032d93F642f64180aa3" });
    expect(r.get("USDT", "anvil").contract).toBe("0x5fbdb2315678afecb367f032d93f642f64180aa3");
  });

  it("rejects an unknown key, a native asset and a bad address", () => {
    const fields = (o: Record<string, string>) => {
      try {
        applyContractOverrides(base(), o);
      } catch (err) {
        return (err as ConfigError).issues;
      }
      throw new Error("expected a ConfigError");
    };
    expect(fields({ "anvil:DAI": "0x5FbDB2315678afecb367f032d93F642f64180aa3" })[0]!.field).toBe(
      "ASSET_CONTRACT_OVERRIDES.anvil:DAI",
    );
    expect(fields({ "anvil:ETH": "0x5FbDB2315678afecb367f032d93F642f64180aa3" })[0]!.message).toContain("native");
    expect(fields({ "anvil:USDT": "0xnope" })[0]!.message).toContain("40-hex");
  });

  it("loads a registry file with overrides and names the file in errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "ponte-registry-"));
    const good = join(dir, "good.json");
    writeFileSync(good, JSON.stringify({ assets: [entry({ network: "anvil", confirmations: 2 })] }));
    const r = loadAssetRegistry(good, { contractOverrides: { "anvil:USDT": "0x5FbDB2315678afecb367f032d93F642f64180aa3" } });
    expect(r.get("USDT", "anvil").contract).toBe("0x5fbdb2315678afecb367f032d93f642f64180aa3");

    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ assets: [entry({ decimals: 40 })] }));
    expect(() => loadAssetRegistry(bad)).toThrow(`${bad}: assets[0](polygon:USDT).decimals`);
    expect(() => loadAssetRegistry(join(dir, "missing.json"))).toThrow(ConfigError);
  });

  it("parses ASSET_CONTRACT_OVERRIDES", () => {
    expect(parseContractOverrides(undefined)).toEqual({});
    expect(parseContractOverrides('{"anvil:USDT":"0xabc"}')).toEqual({ "anvil:USDT": "0xabc" });
    expect(() => parseContractOverrides("{nope")).toThrow(ConfigError);
    expect(() => parseContractOverrides('{"anvil:USDT":1}')).toThrow(ConfigError);
  });
});

describe("confirmationsFor", () => {
  const btc = parseAssetRegistry({
    assets: [
      entry({
        network: "bitcoin",
        family: "utxo",
        symbol: "BTC",
        price_key: "BTC",
        decimals: 8,
        contract: undefined,
        confirmations: 3,
        confirmations_high: { above_brl: "50000", confirmations: 6 },
      }),
    ],
  }).get("BTC", "bitcoin");

  it("needs the higher count only strictly above the threshold", () => {
    expect(confirmationsFor(btc, 5_000_000n)).toBe(3);
    expect(confirmationsFor(btc, 5_000_001n)).toBe(6);
  });

  it("keeps the base count for assets without a threshold", () => {
    const usdt = parseAssetRegistry({ assets: [entry()] }).get("USDT", "polygon");
    expect(confirmationsFor(usdt, 10n ** 12n)).toBe(128);
  });
});
