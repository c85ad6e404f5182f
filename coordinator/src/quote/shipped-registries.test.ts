import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { applyContractOverrides, loadAssetRegistry } from "./registry.js";

// The registries the coordinator ships with: they must load, and the mainnet one must carry the
// real contracts. EIP-55 checksums in the file guard against a mistyped address; Keccak-256 is
// implemented here (Node's crypto has SHA3 only) so the check needs no extra dependency.

const file = (name: string) => fileURLToPath(new URL(`../../assets/${name}`, import.meta.url));
const raw = (name: string) =>
  JSON.parse(readFileSync(file(name), "utf8")) as { assets: { network: string; symbol: string; family: string; contract?: string }[] };

const MASK = (1n << 64n) - 1n;
const rotl = (v: bigint, n: number) => (n === 0 ? v : ((v << BigInt(n)) | (v >> BigInt(64 - n))) & MASK);
const ROUND_CONSTANTS = (() => {
  let r = 1;
  const bit = () => {
    const out = r & 1;
    r = r & 0x80 ? ((r << 1) ^ 0x171) & 0xff : r << 1;
    return out;
  };
  return Array.from({ length: 24 }, () => {
    let c = 0n;
    for (let j = 0; j < 7; j++) if (bit()) c |= 1n << BigInt((1 << j) - 1);
    return c;
  });
})();
const ROTATIONS = (() => {
  const rot = new Array<number>(25).fill(0);
  let x = 1;
  let y = 0;
  for (let t = 0; t < 24; t++) {
    rot[x + 5 * y] = (((t + 1) * (t + 2)) / 2) % 64;
    [x, y] = [y, (2 * x + 3 * y) % 5];
  }
  return rot;
})();

function keccakF(s: bigint[]): void {
  for (let round = 0; round < 24; round++) {
    const c = [0, 1, 2, 3, 4].map((x) => s[x]! ^ s[x + 5]! ^ s[x + 10]! ^ s[x + 15]! ^ s[x + 20]!);
    for (let i = 0; i < 25; i++) s[i] = s[i]! ^ c[(i + 4) % 5]! ^ rotl(c[(i + 1) % 5]!, 1);
    const b = new Array<bigint>(25).fill(0n);
    for (let x = 0; x < 5; x++)
      for (let y = 0; y < 5; y++) b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(s[x + 5 * y]!, ROTATIONS[x + 5 * y]!);
    for (let x = 0; x < 5; x++)
      for (let y = 0; y < 5; y++)
        s[x + 5 * y] = b[x + 5 * y]! ^ (~b[((x + 1) % 5) + 5 * y]! & MASK & b[((x + 2) % 5) + 5 * y]!);
    s[0] = s[0]! ^ ROUND_CONSTANTS[round]!;
  }
}

function keccak256Hex(data: Uint8Array): string {
  const rate = 136;
  const padded = new Uint8Array(Math.ceil((data.length + 1) / rate) * rate);
  padded.set(data);
  padded[data.length]! ^= 0x01;
  padded[padded.length - 1]! ^= 0x80;
  const s = new Array<bigint>(25).fill(0n);
  for (let off = 0; off < padded.length; off += rate) {
    for (let i = 0; i < rate / 8; i++) {
      let lane = 0n;
      for (let k = 7; k >= 0; k--) lane = (lane << 8n) | BigInt(padded[off + i * 8 + k]!);
      s[i] = s[i]! ^ lane;
    }
    keccakF(s);
  }
  let hex = "";
  for (let i = 0; i < 4; i++) for (let k = 0; k < 8; k++) hex += ((s[i]! >> BigInt(8 * k)) & 0xffn).toString(16).padStart(2, "0");
  return hex;
}

function toChecksumAddress(address: string): string {
  const lower = address.slice(2).toLowerCase();
  const hash = keccak256Hex(new TextEncoder().encode(lower));
  return `0x${[...lower].map((ch, i) => (parseInt(hash[i]!, 16) >= 8 ? ch.toUpperCase() : ch)).join("")}`;
}

describe("the EIP-55 check itself", () => {
  it("hashes with Keccak-256 (not SHA3-256)", () => {
    expect(keccak256Hex(new Uint8Array())).toBe("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    expect(keccak256Hex(new TextEncoder().encode("abc"))).toBe(
      "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
    );
  });

  it("reproduces the EIP-55 examples", () => {
    for (const a of ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"])
      expect(toChecksumAddress(a.toLowerCase())).toBe(a);
  });
});

const DECIMALS: Record<string, number> = { BTC: 8, LTC: 8, ETH: 18, POL: 18, BNB: 18, AVAX: 18, SOL: 9, USDT: 6, USDC: 6 };
// BSC's Binance-Peg stablecoins are the exception.
const expectedDecimals = (network: string, symbol: string) =>
  network === "bsc" && (symbol === "USDT" || symbol === "USDC") ? 18 : DECIMALS[symbol];

describe("mainnet.json", () => {
  const registry = loadAssetRegistry(file("mainnet.json"));
  const assets = registry.list();
  const byId = new Map(assets.map((a) => [a.id, a]));

  it("lists exactly the supported assets", () => {
    expect(assets.map((a) => a.id).sort()).toEqual(
      [
        "bitcoin:BTC",
        "litecoin:LTC",
        "ethereum:ETH",
        "ethereum:USDT",
        "ethereum:USDC",
        "polygon:POL",
        "polygon:USDT",
        "polygon:USDC",
        "bsc:BNB",
        "bsc:USDT",
        "bsc:USDC",
        "arbitrum:ETH",
        "arbitrum:USDT",
        "arbitrum:USDC",
        "optimism:ETH",
        "optimism:USDT",
        "optimism:USDC",
        "base:ETH",
        "base:USDC",
        "avalanche:AVAX",
        "avalanche:USDT",
        "avalanche:USDC",
        "solana:SOL",
        "solana:USDT",
        "solana:USDC",
      ].sort(),
    );
  });

  it("pins the real contracts and mints", () => {
    const contracts = Object.fromEntries(assets.filter((a) => a.contract).map((a) => [a.id, a.contract]));
    expect(contracts).toEqual({
      "ethereum:USDT": "0xdac17f958d2ee523a2206206994597c13d831ec7",
      "ethereum:USDC": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
      "polygon:USDT": "0xc2132d05d31c914a87c6611c10748aeb04b58e8f",
      "polygon:USDC": "0x3c499c542cef5e3811e1192ce70d8cc03d5c3359",
      "bsc:USDT": "0x55d398326f99059ff775485246999027b3197955",
      "bsc:USDC": "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d",
      "arbitrum:USDT": "0xfd086bc7cd5c481dcc9c85ebe478a1c0b69fcbb9",
      "arbitrum:USDC": "0xaf88d065e77c8cc2239327c5edb3a432268e5831",
      "optimism:USDT": "0x94b008aa00579c1307b0ef2c499ad98a8ce58e58",
      "optimism:USDC": "0x0b2c639c533813f4aa9d7837caf62653d097ff85",
      "base:USDC": "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
      "avalanche:USDT": "0x9702230a8ea53601f5cd2dc00fdbc13d4df4a8c7",
      "avalanche:USDC": "0xb97ef9ef8734c71904d8002f8b6bc66dd9c48a6e",
      "solana:USDT": "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
      "solana:USDC": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    });
  });

  it("writes every EVM contract EIP-55 checksummed in the file, and loads it as lowercase 0x40-hex", () => {
    for (const a of raw("mainnet.json").assets) {
      if (a.family !== "evm" || !a.contract) continue;
      expect(toChecksumAddress(a.contract), `${a.network}:${a.symbol}`).toBe(a.contract);
      expect(byId.get(`${a.network}:${a.symbol}`)!.contract).toMatch(/^0x[0-9a-f]{40}$/);
    }
  });

  it("has the known decimals, a contract exactly for tokens, and sane limits and margins", () => {
    const natives = new Set(["BTC", "LTC", "ETH", "POL", "BNB", "AVAX", "SOL"]);
    for (const a of assets) {
      expect(a.decimals, a.id).toBe(expectedDecimals(a.network, a.symbol));
      expect(a.contract === undefined, a.id).toBe(natives.has(a.symbol));
      expect(a.priceKey, a.id).toBe(a.symbol);
      expect(a.enabled, a.id).toBe(true);
      expect(a.minAmount > 0n && a.minAmount < a.maxAmount, a.id).toBe(true);
      expect(a.spreadBps, a.id).toBe(300n);
      expect(a.networkFeeBps, a.id).toBe(25n);
    }
  });

  it("uses the finality rules of DESIGN.md §6", () => {
    const confirmations: Record<string, number> = {
      bitcoin: 3,
      litecoin: 6,
      ethereum: 64,
      polygon: 128,
      bsc: 15,
      base: 30,
      arbitrum: 30,
      optimism: 30,
      avalanche: 1,
      solana: 1,
    };
    for (const a of assets) expect(a.confirmations, a.id).toBe(confirmations[a.network]);
    expect(byId.get("bitcoin:BTC")!.confirmationsHigh).toEqual({ aboveCentavos: 5_000_000n, confirmations: 6 });
    expect(assets.filter((a) => a.confirmationsHigh).map((a) => a.id)).toEqual(["bitcoin:BTC"]);
  });
});

describe("local.json", () => {
  const registry = loadAssetRegistry(file("local.json"));

  it("has the local stack's assets", () => {
    expect(registry.list().map((a) => [a.id, a.family, a.decimals, a.confirmations])).toEqual([
      ["anvil:ETH", "evm", 18, 2],
      ["anvil:USDT", "evm", 6, 2],
      ["litecoin-regtest:LTC", "utxo", 8, 6],
      ["solana-local:SOL", "solana", 9, 1],
    ]);
  });

  it("takes the deployed demo token through an override", () => {
    const deployed = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    expect(registry.get("USDT", "anvil").contract).toBe("0x0000000000000000000000000000000000000001");
    const r = applyContractOverrides(registry, { "anvil:USDT": deployed });
    expect(r.get("USDT", "anvil").contract).toBe(deployed.toLowerCase());
    expect(loadAssetRegistry(file("local.json"), { contractOverrides: { "anvil:USDT": deployed } }).get("USDT", "anvil").contract).toBe(
      deployed.toLowerCase(),
    );
  });
});
