import { readFileSync } from "node:fs";
import { ConfigError, parseConfig, z } from "@ponte/common";
import { loadSeedConfig, type SeedSourceConfig } from "@ponte/agent-runtime/keys";
import { getAddress, parseUnits } from "ethers";

export type FinalityRule = { kind: "confirmations"; confirmations: number } | { kind: "finalized" };

export interface TokenConfig {
  symbol: string;
  /** EIP-55 checksummed. */
  contract: string;
  decimals: number;
}

export interface RpcEndpoint {
  http: string;
  ws: string | undefined;
}

export interface EvmConfig {
  network: string;
  chainId: bigint;
  rpc: RpcEndpoint[];
  finality: FinalityRule;
  tokens: TokenConfig[];
  /** Where to start when the coordinator has no cursor; "latest" = the head at start-up. */
  startHeight: bigint | "latest";
  /** Blocks per catch-up step (and per ReportBlocks call). */
  batchSize: number;
  /** Concurrent HTTP requests to the node. */
  maxInFlight: number;
  /** Calls per JSON-RPC batch request. */
  rpcBatchSize: number;
  /** Largest eth_getLogs block range tried first; shrinks when a provider refuses it. */
  logsMaxRange: number;
  pollIntervalMs: number;
  rpcTimeoutMs: number;
  // The transfer settings below are optional so configs built in code (tests) need not spell
  // them out; parseEvmConfig always fills them, and transferSettings() gives the defaults.
  /** Optional cold wallet (address only) the coordinator rebalances the hot wallet's excess to. */
  coldWallet?: string | null;
  /** Native base units above which the hot wallet's excess goes to cold; null = no ceiling. */
  hotCeiling?: bigint | null;
  /** Cap on maxFeePerGas for every transfer, in wei. */
  maxFeePerGas?: bigint;
  /** A transfer not mined this many blocks after it was sent is replaced with a fee bump. */
  replaceAfterBlocks?: number;
  /** Gas limit floor for an ERC-20 transfer (the estimate, with a margin, is used when higher). */
  erc20GasLimit?: bigint;
  /** How often the hot wallet's balances are read for the metrics. */
  balanceIntervalMs?: number;
}

export interface TransferSettings {
  coldWallet: string | null;
  hotCeiling: bigint | null;
  maxFeePerGas: bigint;
  replaceAfterBlocks: number;
  erc20GasLimit: bigint;
  balanceIntervalMs: number;
}

export const DEFAULT_MAX_FEE_PER_GAS_GWEI = "500";
export const DEFAULT_REPLACE_AFTER_BLOCKS = 12;
export const DEFAULT_ERC20_GAS_LIMIT = 65_000;
export const DEFAULT_BALANCE_INTERVAL_MS = 30_000;

export function transferSettings(c: EvmConfig): TransferSettings {
  return {
    coldWallet: c.coldWallet ?? null,
    hotCeiling: c.hotCeiling ?? null,
    maxFeePerGas: c.maxFeePerGas ?? gweiToWei(DEFAULT_MAX_FEE_PER_GAS_GWEI),
    replaceAfterBlocks: c.replaceAfterBlocks ?? DEFAULT_REPLACE_AFTER_BLOCKS,
    erc20GasLimit: c.erc20GasLimit ?? BigInt(DEFAULT_ERC20_GAS_LIMIT),
    balanceIntervalMs: c.balanceIntervalMs ?? DEFAULT_BALANCE_INTERVAL_MS,
  };
}

const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });
const wsUrl = z.url({ protocol: /^wss?$/, error: "must be a ws(s) URL" });

const Finality = z.union(
  [z.literal("finalized"), z.object({ confirmations: z.number().int().min(1).max(10_000) }).strict()],
  { error: 'unknown finality rule: use "finalized" or {"confirmations": n}' },
);

const Token = z
  .object({
    symbol: z.string().regex(/^[A-Za-z0-9.$_-]{1,16}$/, { error: "must be 1-16 letters, digits or .$_-" }),
    contract: z.string().transform((v, ctx) => {
      try {
        return getAddress(v);
      } catch {
        ctx.addIssue({ code: "custom", message: "must be a 0x-prefixed 20-byte address (with a valid EIP-55 checksum when mixed-case)" });
        return z.NEVER;
      }
    }),
    decimals: z.number().int().min(0).max(36),
  })
  .strict();

const ConfigFile = z
  .object({
    network: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, { error: "must be a lower-case network name like \"polygon\"" }),
    chain_id: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)], { error: "must be a positive integer" }),
    rpc: z
      .array(z.object({ http: httpUrl, ws: z.preprocess((v) => (v === "" ? undefined : v), wsUrl.optional()) }).strict())
      .min(1, { error: "needs at least one endpoint" }),
    finality: Finality,
    tokens: z.array(Token).default([]),
    start_height: z.union([z.literal("latest"), z.number().int().min(0)], { error: 'must be a block number or "latest"' }).default("latest"),
    batch_size: z.number().int().min(1).max(2_000).default(100),
    max_in_flight: z.number().int().min(1).max(256).default(8),
    rpc_batch_size: z.number().int().min(1).max(1_000).default(50),
    logs_max_range: z.number().int().min(1).max(100_000).default(2_000),
    poll_interval_ms: z.number().int().min(50).max(600_000).default(2_000),
    rpc_timeout_ms: z.number().int().min(100).max(300_000).default(15_000),
    cold_wallet: z
      .string()
      .transform((v, ctx) => {
        try {
          return getAddress(v);
        } catch {
          ctx.addIssue({ code: "custom", message: "must be a 0x-prefixed 20-byte address (with a valid EIP-55 checksum when mixed-case)" });
          return z.NEVER;
        }
      })
      .optional(),
    hot_ceiling: z.string().regex(/^\d{1,78}$/, { error: "must be a decimal string of native base units (wei)" }).optional(),
    // A decimal (JSON number or string) with up to 9 places: parsed as text, never through a float.
    max_fee_per_gas_gwei: z
      .union([z.number(), z.string()])
      .default(DEFAULT_MAX_FEE_PER_GAS_GWEI)
      .transform((v, ctx) => {
        const text = String(v);
        if (!/^\d{1,7}(\.\d{1,9})?$/.test(text) || /^0+(\.0+)?$/.test(text) || Number(text) > 1_000_000) {
          ctx.addIssue({ code: "custom", message: "must be a positive decimal of gwei up to 1000000, at most 9 decimal places (e.g. 0.5)" });
          return z.NEVER;
        }
        return text;
      }),
    replace_after_blocks: z.number().int().min(1).max(10_000).default(DEFAULT_REPLACE_AFTER_BLOCKS),
    erc20_gas_limit: z.number().int().min(21_000).max(10_000_000).default(DEFAULT_ERC20_GAS_LIMIT),
    balance_interval_ms: z.number().int().min(100).max(3_600_000).default(DEFAULT_BALANCE_INTERVAL_MS),
  })
  .strict()
  .superRefine((c, ctx) => {
    const contracts = new Map<string, number>();
    const symbols = new Map<string, number>();
    c.tokens.forEach((t, i) => {
      const key = t.contract.toLowerCase();
      const j = contracts.get(key);
      if (j !== undefined) ctx.addIssue({ code: "custom", path: ["tokens", i, "contract"], message: `duplicate token: same contract as tokens.${j}` });
      else contracts.set(key, i);
      const k = symbols.get(t.symbol.toUpperCase());
      if (k !== undefined) ctx.addIssue({ code: "custom", path: ["tokens", i, "symbol"], message: `duplicate token: same symbol as tokens.${k}` });
      else symbols.set(t.symbol.toUpperCase(), i);
    });
  });

/** The variable SEED_SOURCE=env reads (local development only). */
export const EVM_DEV_SEED_VARIABLE = "EVM_SEED_MNEMONIC";
/** VAULT_SEED_PATH when unset. */
export const EVM_DEFAULT_VAULT_PATH = "ponte/agents/evm";

/**
 * Replaces ${NAME} and ${NAME:-default} in every string of the file with the environment, so
 * endpoint URLs carrying API keys stay out of the committed files.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: string[] = [], issues: { field: string; message: string }[] = []): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, def: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== "") return v;
      if (def !== undefined) return def;
      issues.push({ field: path.join(".") || "(root)", message: `environment variable ${name} is not set` });
      return "";
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...path, String(i)], issues));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...path, k], issues)]));
  }
  return value;
}

/** Validates a parsed config file (after env substitution); errors name each bad field. */
export function parseEvmConfig(json: unknown, env: NodeJS.ProcessEnv = {}): EvmConfig {
  const issues: { field: string; message: string }[] = [];
  const substituted = substituteEnv(json, env, [], issues);
  if (issues.length) throw new ConfigError(issues);
  const c = parseConfig(ConfigFile, substituted);
  return {
    network: c.network,
    chainId: BigInt(c.chain_id),
    rpc: c.rpc.map((r) => ({ http: r.http, ws: r.ws })),
    finality: c.finality === "finalized" ? { kind: "finalized" } : { kind: "confirmations", confirmations: c.finality.confirmations },
    tokens: c.tokens,
    startHeight: c.start_height === "latest" ? "latest" : BigInt(c.start_height),
    batchSize: c.batch_size,
    maxInFlight: c.max_in_flight,
    rpcBatchSize: c.rpc_batch_size,
    logsMaxRange: c.logs_max_range,
    pollIntervalMs: c.poll_interval_ms,
    rpcTimeoutMs: c.rpc_timeout_ms,
    coldWallet: c.cold_wallet ?? null,
    hotCeiling: c.hot_ceiling === undefined ? null : BigInt(c.hot_ceiling),
    maxFeePerGas: gweiToWei(c.max_fee_per_gas_gwei),
    replaceAfterBlocks: c.replace_after_blocks,
    erc20GasLimit: BigInt(c.erc20_gas_limit),
    balanceIntervalMs: c.balance_interval_ms,
  };
}

// The cap is written in gwei (how operators think of it) and may be fractional on L2s (0.5).
export function gweiToWei(gwei: string): bigint {
  return parseUnits(gwei, "gwei");
}

/**
 * Reads EVM_CONFIG (a JSON file) and where the seed comes from (SEED_SOURCE=vault|keystore, or
 * env with EVM_SEED_MNEMONIC in local development); every error names the field (and the file)
 * and none repeats a secret. The seed itself is read later, by loadSeed().
 */
export function loadEvmConfig(env: NodeJS.ProcessEnv = process.env): { config: EvmConfig; seed: SeedSourceConfig } {
  const path = env.EVM_CONFIG;
  if (!path) throw new ConfigError([{ field: "EVM_CONFIG", message: "is required (path to the network's JSON config, e.g. agents/evm/config/polygon.json)" }]);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConfigError([{ field: "EVM_CONFIG", message: `cannot read ${path} as JSON: ${(err as Error).message}` }]);
  }
  let config: EvmConfig;
  try {
    config = parseEvmConfig(json, env);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.issues.map((i) => ({ ...i, field: `${path}: ${i.field}` })));
    throw err;
  }
  config = applyContractOverrides(config, env.ASSET_CONTRACT_OVERRIDES);
  const seed = loadSeedConfig(env, { defaultPath: EVM_DEFAULT_VAULT_PATH, devSeedVariable: EVM_DEV_SEED_VARIABLE });
  return { config, seed };
}

/**
 * ASSET_CONTRACT_OVERRIDES, the variable the coordinator's asset registry reads too: a JSON
 * object of "network:SYMBOL" → contract (e.g. {"anvil:USDT":"0x…"} once a local token is
 * deployed). Keys of other networks are ignored; a key naming a token this config lacks is an error.
 */
export function applyContractOverrides(config: EvmConfig, raw: string | undefined): EvmConfig {
  const field = "ASSET_CONTRACT_OVERRIDES";
  if (raw === undefined || raw.trim() === "") return config;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError([{ field, message: `must be a JSON object like {"anvil:USDT":"0x…"}: ${(err as Error).message}` }]);
  }
  const r = z.record(z.string(), z.string()).safeParse(json);
  if (!r.success) throw new ConfigError([{ field, message: 'must be a JSON object of strings like {"anvil:USDT":"0x…"}' }]);
  const tokens = config.tokens.map((t) => ({ ...t }));
  const issues: { field: string; message: string }[] = [];
  for (const [key, value] of Object.entries(r.data)) {
    const [network, symbol] = key.split(":");
    if (network !== config.network) continue;
    const t = tokens.find((x) => x.symbol === symbol);
    if (!t) {
      issues.push({ field: `${field}.${key}`, message: `no token ${symbol ?? ""} in the ${config.network} config` });
      continue;
    }
    try {
      t.contract = getAddress(value);
    } catch {
      issues.push({ field: `${field}.${key}`, message: "must be a 0x-prefixed 20-byte address" });
    }
  }
  const seen = new Set<string>();
  for (const t of tokens) {
    if (seen.has(t.contract.toLowerCase())) issues.push({ field: `${field}`, message: `duplicate token: ${t.contract} used twice` });
    seen.add(t.contract.toLowerCase());
  }
  if (issues.length) throw new ConfigError(issues);
  return { ...config, tokens };
}

/** Host only: provider URLs often carry an API key in the path or query. */
export function endpointLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "[unparseable url]";
  }
}
