import { readFileSync } from "node:fs";
import { loadSeedConfig, type SeedSourceConfig } from "@ponte/agent-runtime/keys";
import { ConfigError, parseConfig, z } from "@ponte/common";
import { address as baddress } from "bitcoinjs-lib";
import { CHAIN_NAMES, CHAINS, type ChainName, type ChainParams } from "./networks.js";

export * from "./networks.js";

export type ScriptType = "p2wpkh" | "p2pkh" | "p2sh";

export type RpcAuth = { kind: "password"; user: string; password: string } | { kind: "cookie"; file: string } | { kind: "none" };

export interface FeeSettings {
  /** estimatesmartfee's confirmation target. */
  confTarget: number;
  /** sat/vB never gone below (the node's relay floor is 1). */
  floorSatVb: bigint;
  /** sat/vB when the node has no estimate (regtest, a fresh node). */
  fallbackSatVb: bigint;
  /** sat/vB never signed above, a bump included. */
  maxSatVb: bigint;
}

export interface UtxoConfig {
  /** The coordinator's network name (its asset registry's `network`). */
  network: string;
  chain: ChainParams;
  rpc: { url: string; auth: RpcAuth };
  /** Base URL of the node's REST interface (-rest=1); blocks are read there when set. */
  restUrl: string | null;
  /** Blocks on top of a deposit's (its own included) before it is final. */
  confirmations: number;
  startHeight: bigint | "latest";
  /** Blocks per catch-up step (and per ReportBlocks call). */
  batchSize: number;
  /** Calls per JSON-RPC batch. */
  rpcBatchSize: number;
  /** Concurrent HTTP requests to the node: keep it below its -rpcworkqueue (16 by default). */
  maxInFlight: number;
  pollIntervalMs: number;
  mempoolIntervalMs: number;
  rpcTimeoutMs: number;
  /** Recent blocks remembered for reorg detection (at least the finality depth). */
  reorgWindow: number;
  /** Output types credited to a watched address besides P2WPKH (deposit addresses are P2WPKH). */
  acceptScripts: ScriptType[];
  fees: FeeSettings;
  /** Outputs below this (satoshis) are not created; change below it goes to the fee. */
  dustLimit: bigint;
  /** A transfer not confirmed this many blocks after it was sent is replaced (RBF) with a higher fee. */
  replaceAfterBlocks: number;
  coldWallet: string | null;
  hotCeiling: bigint | null;
  balanceIntervalMs: number;
}

const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });
const satVb = z.number().int().min(1).max(100_000);

const ConfigFile = z
  .object({
    network: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, { error: 'must be a lower-case network name like "litecoin"' }),
    chain: z.enum(CHAIN_NAMES as [ChainName, ...ChainName[]], { error: `must be one of ${CHAIN_NAMES.join(", ")}` }),
    rpc: z
      .object({
        url: httpUrl,
        user: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        cookie_file: z.string().min(1).optional(),
      })
      .strict()
      .superRefine((r, ctx) => {
        if (r.cookie_file && (r.user || r.password)) ctx.addIssue({ code: "custom", message: "use either user/password or cookie_file, not both" });
        if (!!r.user !== !!r.password) ctx.addIssue({ code: "custom", path: [r.user ? "password" : "user"], message: "user and password go together" });
      }),
    rest_url: z.preprocess((v) => (v === "" ? undefined : v), httpUrl.optional()),
    finality: z.object({ confirmations: z.number().int().min(1).max(1_000) }, { error: 'must be {"confirmations": n}' }).strict().optional(),
    start_height: z.union([z.literal("latest"), z.number().int().min(0)], { error: 'must be a block height or "latest"' }).default("latest"),
    batch_size: z.number().int().min(1).max(1_000).default(50),
    rpc_batch_size: z.number().int().min(1).max(500).default(10),
    max_in_flight: z.number().int().min(1).max(64).default(4),
    poll_interval_ms: z.number().int().min(50).max(600_000).default(1_000),
    mempool_interval_ms: z.number().int().min(50).max(600_000).default(2_000),
    rpc_timeout_ms: z.number().int().min(100).max(300_000).default(30_000),
    reorg_window: z.number().int().min(2).max(10_000).default(100),
    accept_scripts: z.array(z.enum(["p2wpkh", "p2pkh", "p2sh"])).default(["p2wpkh"]),
    fees: z
      .object({
        conf_target: z.number().int().min(1).max(1_008).default(3),
        floor_sat_vb: satVb.default(1),
        fallback_sat_vb: satVb.default(10),
        max_sat_vb: satVb.default(500),
      })
      .strict()
      .default({ conf_target: 3, floor_sat_vb: 1, fallback_sat_vb: 10, max_sat_vb: 500 }),
    dust_limit_sat: z.number().int().min(0).max(1_000_000).default(546),
    replace_after_blocks: z.number().int().min(1).max(10_000).default(3),
    cold_wallet: z.string().min(1).optional(),
    hot_ceiling: z.string().regex(/^\d{1,20}$/, { error: "must be a decimal string of satoshis" }).optional(),
    balance_interval_ms: z.number().int().min(100).max(86_400_000).default(300_000),
  })
  .strict()
  .superRefine((c, ctx) => {
    const chain = CHAINS[c.chain];
    if (c.fees.floor_sat_vb > c.fees.max_sat_vb) ctx.addIssue({ code: "custom", path: ["fees", "floor_sat_vb"], message: "is above fees.max_sat_vb" });
    if (c.fees.fallback_sat_vb > c.fees.max_sat_vb) ctx.addIssue({ code: "custom", path: ["fees", "fallback_sat_vb"], message: "is above fees.max_sat_vb" });
    if (c.cold_wallet !== undefined && !isAddressOf(c.cold_wallet, chain)) {
      ctx.addIssue({ code: "custom", path: ["cold_wallet"], message: `is not a ${chain.name} address` });
    }
    const conf = c.finality?.confirmations ?? chain.defaultConfirmations;
    if (c.reorg_window < conf) ctx.addIssue({ code: "custom", path: ["reorg_window"], message: `must be at least the ${conf} confirmations of finality` });
  });

/** True when s decodes (checksum, version bytes, witness program) as an address of chain. */
export function isAddressOf(s: string, chain: ChainParams): boolean {
  try {
    baddress.toOutputScript(s, chain.network);
    return true;
  } catch {
    return false;
  }
}

/** The variable SEED_SOURCE=env reads (local development only). */
export const UTXO_DEV_SEED_VARIABLE = "UTXO_SEED_MNEMONIC";
/** VAULT_SEED_PATH when unset. */
export const UTXO_DEFAULT_VAULT_PATH = "ponte/agents/bitcoin";

/** ${NAME} and ${NAME:-default} in every string, so RPC passwords stay out of committed files. */
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

/** Validates a parsed config file (after env substitution); errors name each bad field, never a secret. */
export function parseUtxoConfig(json: unknown, env: NodeJS.ProcessEnv = {}): UtxoConfig {
  const issues: { field: string; message: string }[] = [];
  const substituted = substituteEnv(json, env, [], issues);
  if (issues.length) throw new ConfigError(issues);
  const c = parseConfig(ConfigFile, substituted);
  const chain = CHAINS[c.chain];
  const auth: RpcAuth = c.rpc.cookie_file
    ? { kind: "cookie", file: c.rpc.cookie_file }
    : c.rpc.user && c.rpc.password
      ? { kind: "password", user: c.rpc.user, password: c.rpc.password }
      : { kind: "none" };
  return {
    network: c.network,
    chain,
    rpc: { url: c.rpc.url, auth },
    restUrl: c.rest_url ?? null,
    confirmations: c.finality?.confirmations ?? chain.defaultConfirmations,
    startHeight: c.start_height === "latest" ? "latest" : BigInt(c.start_height),
    batchSize: c.batch_size,
    rpcBatchSize: c.rpc_batch_size,
    maxInFlight: c.max_in_flight,
    pollIntervalMs: c.poll_interval_ms,
    mempoolIntervalMs: c.mempool_interval_ms,
    rpcTimeoutMs: c.rpc_timeout_ms,
    reorgWindow: c.reorg_window,
    acceptScripts: [...new Set<ScriptType>(["p2wpkh", ...c.accept_scripts])],
    fees: {
      confTarget: c.fees.conf_target,
      floorSatVb: BigInt(c.fees.floor_sat_vb),
      fallbackSatVb: BigInt(c.fees.fallback_sat_vb),
      maxSatVb: BigInt(c.fees.max_sat_vb),
    },
    dustLimit: BigInt(c.dust_limit_sat),
    replaceAfterBlocks: c.replace_after_blocks,
    coldWallet: c.cold_wallet ?? null,
    hotCeiling: c.hot_ceiling === undefined ? null : BigInt(c.hot_ceiling),
    balanceIntervalMs: c.balance_interval_ms,
  };
}

/**
 * Reads UTXO_CONFIG (a JSON file) and where the seed comes from (SEED_SOURCE=vault|keystore, or
 * env with UTXO_SEED_MNEMONIC in local development). Every error names the field and the file.
 */
export function loadUtxoConfig(env: NodeJS.ProcessEnv = process.env): { config: UtxoConfig; seed: SeedSourceConfig } {
  const path = env.UTXO_CONFIG;
  if (!path) throw new ConfigError([{ field: "UTXO_CONFIG", message: "is required (path to the network's JSON config, e.g. agents/bitcoin/config/litecoin.json)" }]);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConfigError([{ field: "UTXO_CONFIG", message: `cannot read ${path} as JSON: ${(err as Error).message}` }]);
  }
  let config: UtxoConfig;
  try {
    config = parseUtxoConfig(json, env);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.issues.map((i) => ({ ...i, field: `${path}: ${i.field}` })));
    throw err;
  }
  const seed = loadSeedConfig(env, { defaultPath: UTXO_DEFAULT_VAULT_PATH, devSeedVariable: UTXO_DEV_SEED_VARIABLE });
  return { config, seed };
}

/** scheme://host:port only: an RPC URL may carry credentials. */
export function endpointLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "[unparseable url]";
  }
}
