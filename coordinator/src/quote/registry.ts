import { readFileSync } from "node:fs";
import { z } from "zod";
import { BPS_SCALE, ConfigError, PonteError, parseBrl, parseUnits, percentToBps } from "@ponte/common";
import type { Asset, AssetRegistry, ChainFamily } from "./types.js";

// The asset registry file (coordinator/assets/*.json), snake_case, one entry per (network, symbol):
// {
//   "_comment": "free text",
//   "assets": [{
//     "network": "polygon", "family": "evm", "symbol": "USDT", "name": "Tether USD", "decimals": 6,
//     "contract": "0x…",                      // token contract (EVM) or mint (Solana); absent for the native asset
//     "min_amount": "5", "max_amount": "200000",  // human decimals, at most `decimals` places
//     "confirmations": 128,
//     "confirmations_high": { "above_brl": "50000", "confirmations": 6 },   // optional
//     "enabled": true,                         // default true
//     "spread_percent": "3",                   // default "3"
//     "network_fee_percent": "0.25",           // default "0.25"
//     "price_key": "USDT"
//   }]
// }
// Percentages and amounts are strings so that no value ever passes through a float.

type Issue = { field: string; message: string };

const DECIMAL = /^\d+(?:\.\d+)?$/;
const decimalString = z.string().regex(DECIMAL, 'must be a decimal string like "12.34"');
const upperKey = z.string().regex(/^[A-Z0-9]{1,16}$/, "must be 1 to 16 uppercase letters or digits");

const AssetEntrySchema = z.strictObject({
  _comment: z.string().optional(),
  network: z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be lowercase letters, digits and dashes"),
  family: z.enum(["evm", "utxo", "solana"]),
  symbol: upperKey,
  name: z.string().min(1),
  decimals: z.number().int().min(0).max(36),
  contract: z.string().min(1).optional(),
  min_amount: decimalString,
  max_amount: decimalString,
  confirmations: z.number().int().min(1),
  confirmations_high: z
    .strictObject({ above_brl: decimalString, confirmations: z.number().int().min(1) })
    .optional(),
  enabled: z.boolean().default(true),
  spread_percent: decimalString.default("3"),
  network_fee_percent: decimalString.default("0.25"),
  price_key: upperKey,
});
type AssetEntry = z.output<typeof AssetEntrySchema>;

const RegistryFileSchema = z.strictObject({
  _comment: z.union([z.string(), z.array(z.string())]).optional(),
  assets: z.array(z.unknown()).min(1),
});

const EVM_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const EVM_ZERO = `0x${"0".repeat(40)}`;
const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** Byte length of a base58 string, or undefined when it is not base58. */
function base58Length(s: string): number | undefined {
  let n = 0n;
  for (const ch of s) {
    const d = BASE58.indexOf(ch);
    if (d < 0) return undefined;
    n = n * 58n + BigInt(d);
  }
  const zeros = /^1*/.exec(s)![0].length;
  const body = n === 0n ? 0 : Math.ceil(n.toString(16).length / 2);
  return zeros + body;
}

/** Normalised contract for the family, or an error message. Lowercases EVM addresses. */
function normaliseContract(family: ChainFamily, contract: string): { value: string } | { error: string } {
  switch (family) {
    case "utxo":
      return { error: "UTXO assets have no contract" };
    case "evm": {
      if (!EVM_ADDRESS.test(contract)) return { error: "must be a 0x-prefixed 40-hex-digit address" };
      const lower = contract.toLowerCase();
      if (lower === EVM_ZERO) return { error: "must not be the zero address" };
      return { value: lower };
    }
    case "solana":
      // A mint is a 32-byte public key in base58; case is significant, so it is kept as written.
      return base58Length(contract) === 32 ? { value: contract } : { error: "must be a base58 32-byte mint address" };
  }
}

const assetKey = (network: string, symbol: string) => `${network}:${symbol}`;

function labelOf(raw: unknown, index: number): string {
  const r = raw as { network?: unknown; symbol?: unknown } | null;
  const named = r && typeof r === "object" && typeof r.network === "string" && typeof r.symbol === "string";
  return named ? `assets[${index}](${r.network}:${r.symbol})` : `assets[${index}]`;
}

/** Turns one schema-valid entry into an Asset, collecting every problem it has. */
function toAsset(e: AssetEntry, label: string, issues: Issue[]): Asset | undefined {
  const before = issues.length;
  const at = (field: string, message: string) => issues.push({ field: `${label}.${field}`, message });
  const parse = <T>(field: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof PonteError) {
        at(field, err.message);
        return undefined;
      }
      throw err;
    }
  };

  let contract: string | undefined;
  if (e.contract !== undefined) {
    const c = normaliseContract(e.family, e.contract);
    if ("error" in c) at("contract", c.error);
    else contract = c.value;
  }
  const minAmount = parse("min_amount", () => parseUnits(e.min_amount, e.decimals, "min_amount"));
  const maxAmount = parse("max_amount", () => parseUnits(e.max_amount, e.decimals, "max_amount"));
  if (minAmount !== undefined && minAmount <= 0n) at("min_amount", "must be greater than zero");
  if (minAmount !== undefined && maxAmount !== undefined && minAmount > maxAmount)
    at("min_amount", `must not exceed max_amount (${e.max_amount})`);
  const spreadBps = parse("spread_percent", () => percentToBps(e.spread_percent));
  const networkFeeBps = parse("network_fee_percent", () => percentToBps(e.network_fee_percent));
  if (spreadBps !== undefined && networkFeeBps !== undefined && spreadBps + networkFeeBps >= BPS_SCALE)
    at("spread_percent", "spread_percent + network_fee_percent must be below 100");

  let confirmationsHigh: Asset["confirmationsHigh"];
  if (e.confirmations_high) {
    const high = e.confirmations_high;
    const aboveCentavos = parse("confirmations_high.above_brl", () =>
      parseBrl(high.above_brl, "confirmations_high.above_brl"),
    );
    if (high.confirmations <= e.confirmations)
      at("confirmations_high.confirmations", `must be greater than confirmations (${e.confirmations})`);
    if (aboveCentavos !== undefined) confirmationsHigh = { aboveCentavos, confirmations: high.confirmations };
  }

  if (issues.length > before) return undefined;
  return {
    id: assetKey(e.network, e.symbol),
    symbol: e.symbol,
    network: e.network,
    family: e.family,
    name: e.name,
    decimals: e.decimals,
    ...(contract !== undefined ? { contract } : {}),
    minAmount: minAmount!,
    maxAmount: maxAmount!,
    confirmations: e.confirmations,
    ...(confirmationsHigh ? { confirmationsHigh } : {}),
    enabled: e.enabled,
    spreadBps: spreadBps!,
    networkFeeBps: networkFeeBps!,
    priceKey: e.price_key,
  };
}

/**
 * Checks that hold across entries: one entry per (network, symbol), one asset per contract on a
 * network, one native asset per network (agents tell native deposits by the absent contract), and
 * one family per network.
 */
function crossCheck(assets: { asset: Asset; label: string }[]): Issue[] {
  const issues: Issue[] = [];
  const ids = new Map<string, string>();
  const contracts = new Map<string, string>();
  const natives = new Map<string, string>();
  const families = new Map<string, { family: ChainFamily; label: string }>();
  for (const { asset, label } of assets) {
    const dupId = ids.get(asset.id);
    if (dupId) issues.push({ field: `${label}.symbol`, message: `duplicates ${asset.id} already defined at ${dupId}` });
    else ids.set(asset.id, label);

    if (asset.contract !== undefined) {
      const k = `${asset.network}|${asset.contract}`;
      const dup = contracts.get(k);
      if (dup) issues.push({ field: `${label}.contract`, message: `contract already used on ${asset.network} by ${dup}` });
      else contracts.set(k, label);
    } else {
      const dup = natives.get(asset.network);
      if (dup)
        issues.push({ field: `${label}.contract`, message: `${asset.network} already has a native asset at ${dup}; tokens need a contract` });
      else natives.set(asset.network, label);
    }

    const fam = families.get(asset.network);
    if (fam && fam.family !== asset.family)
      issues.push({ field: `${label}.family`, message: `${asset.network} is "${fam.family}" at ${fam.label}` });
    else if (!fam) families.set(asset.network, { family: asset.family, label });
  }
  return issues;
}

function freezeAsset(a: Asset): Asset {
  if (a.confirmationsHigh) Object.freeze(a.confirmationsHigh);
  return Object.freeze(a);
}

/** Builds the lookup over already-validated assets. Symbols match case-insensitively, networks too. */
function buildRegistry(assets: Asset[]): AssetRegistry {
  const all = assets.map(freezeAsset);
  const byId = new Map(all.map((a) => [a.id, a]));
  const find = (symbol: string, network: string) => byId.get(assetKey(network.toLowerCase(), symbol.toUpperCase()));
  return {
    // Disabled assets stay listed: agents keep watching their contracts so late deposits are refunded.
    list: () => [...all],
    find,
    get(symbol, network) {
      const a = find(symbol, network);
      if (!a) throw new PonteError("ASSET_NOT_FOUND", `Unknown asset ${symbol} on ${network}`, { symbol, network });
      if (!a.enabled) throw new PonteError("ASSET_DISABLED", `${a.symbol} on ${a.network} is disabled`, { asset: a.id });
      return a;
    },
    byNetwork: (network) => all.filter((a) => a.network === network.toLowerCase()),
  };
}

/** Validates a parsed registry file; throws ConfigError naming every bad field with its asset. */
export function parseAssetRegistry(json: unknown): AssetRegistry {
  const file = RegistryFileSchema.safeParse(json);
  if (!file.success) {
    throw new ConfigError(
      file.error.issues.map((i) => ({ field: i.path.map(String).join(".") || "(root)", message: i.message })),
    );
  }
  const issues: Issue[] = [];
  const valid: { asset: Asset; label: string }[] = [];
  file.data.assets.forEach((raw, index) => {
    const label = labelOf(raw, index);
    const entry = AssetEntrySchema.safeParse(raw);
    if (!entry.success) {
      for (const i of entry.error.issues) {
        issues.push({ field: i.path.length ? `${label}.${i.path.map(String).join(".")}` : label, message: i.message });
      }
      return;
    }
    const asset = toAsset(entry.data, label, issues);
    if (asset) valid.push({ asset, label });
  });
  issues.push(...crossCheck(valid));
  if (issues.length) throw new ConfigError(issues);
  return buildRegistry(valid.map((v) => v.asset));
}

/** Reads and validates a registry file; optional contract overrides are applied after validation. */
export function loadAssetRegistry(path: string, options: { contractOverrides?: Record<string, string> } = {}): AssetRegistry {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConfigError([{ field: path, message: `cannot read asset registry: ${(err as Error).message}` }]);
  }
  let registry: AssetRegistry;
  try {
    registry = parseAssetRegistry(json);
  } catch (err) {
    // Prefix the file so a start-up failure says which registry was wrong.
    if (err instanceof ConfigError) throw new ConfigError(err.issues.map((i) => ({ ...i, field: `${path}: ${i.field}` })));
    throw err;
  }
  const overrides = options.contractOverrides ?? {};
  return Object.keys(overrides).length ? applyContractOverrides(registry, overrides) : registry;
}

/**
 * Replaces token contracts by "network:SYMBOL" key, e.g. {"anvil:USDT": "0xabc…"} once the local
 * stack has deployed its demo token. Only token assets can be overridden; the result is
 * re-validated as a whole (a contract may still be used once per network).
 */
export function applyContractOverrides(registry: AssetRegistry, overrides: Record<string, string>): AssetRegistry {
  const issues: Issue[] = [];
  const assets = registry.list();
  const byId = new Map(assets.map((a) => [a.id, a]));
  const replaced = new Map<string, string>();
  for (const [key, value] of Object.entries(overrides)) {
    const field = `ASSET_CONTRACT_OVERRIDES.${key}`;
    const asset = byId.get(key);
    if (!asset) {
      issues.push({ field, message: `no asset "${key}" in the registry (keys look like "anvil:USDT")` });
      continue;
    }
    if (asset.contract === undefined) {
      issues.push({ field, message: `${key} is a native asset and has no contract` });
      continue;
    }
    const c = typeof value === "string" ? normaliseContract(asset.family, value) : { error: "must be a string" };
    if ("error" in c) issues.push({ field, message: c.error });
    else replaced.set(key, c.value);
  }
  if (issues.length) throw new ConfigError(issues);
  const next = assets.map((a) => {
    const contract = replaced.get(a.id);
    return contract === undefined ? { ...a } : { ...a, contract };
  });
  const cross = crossCheck(next.map((asset) => ({ asset, label: asset.id })));
  if (cross.length) throw new ConfigError(cross);
  return buildRegistry(next);
}

/** Parses ASSET_CONTRACT_OVERRIDES (a JSON object of "network:SYMBOL" → contract); empty when unset. */
export function parseContractOverrides(raw: string | undefined, field = "ASSET_CONTRACT_OVERRIDES"): Record<string, string> {
  if (raw === undefined || raw.trim() === "") return {};
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError([{ field, message: `must be a JSON object like {"anvil:USDT":"0x…"}: ${(err as Error).message}` }]);
  }
  const r = z.record(z.string(), z.string().min(1)).safeParse(json);
  if (!r.success) throw new ConfigError([{ field, message: 'must be a JSON object of strings like {"anvil:USDT":"0x…"}' }]);
  return r.data;
}

/** Confirmations a deposit needs: the higher count once the quoted BRL is above the asset's threshold. */
export function confirmationsFor(asset: Asset, fiatCentavos: bigint): number {
  const high = asset.confirmationsHigh;
  return high && fiatCentavos > high.aboveCentavos ? high.confirmations : asset.confirmations;
}
