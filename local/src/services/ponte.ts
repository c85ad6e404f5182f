// Ponte's own processes: the coordinator, the gateway and the agents.
import { ASSETS_FILE, ENTRIES, EVM_ANVIL_CONFIG, UTXO_LITECOIN_REGTEST_CONFIG } from "../paths.js";
import type { Supervisor } from "../supervisor/index.js";

/** Prices of the local registry's assets (BRL per unit); STATIC_PRICES in the environment wins. */
export const LOCAL_PRICES = { USDT: "5.40", ETH: "15000.00", LTC: "400.00", SOL: "800.00" };

/**
 * Local tuning: shorter polls so a demo sale takes seconds. Any of these exported in the
 * environment wins; the wiring (URLs, ports, keys) below does not, npm start owns it.
 */
const COORDINATOR_DEFAULTS: Record<string, string> = {
  PRICE_SOURCE: "static",
  STATIC_PRICES: JSON.stringify(LOCAL_PRICES),
  WATCH_POLL_MS: "500",
  OUTBOX_POLL_MS: "500",
  PAYOUT_INTERVAL_MS: "250",
  EXPIRY_INTERVAL_MS: "2000",
  LEASE_TTL_MS: "5000",
  ADDRESS_POOL_LOW_WATER: "10",
  ADDRESS_POOL_TARGET: "50",
};

export async function startCoordinator(
  sup: Supervisor,
  o: {
    databaseUrl: string;
    natsUrl: string;
    grpcPort: number;
    metricsPort: number;
    contractOverrides: Record<string, string>;
    starkbank: { url: string; projectId: string; privateKeyPem: string };
  },
): Promise<void> {
  const child = sup.start({
    name: "coordinator",
    cmd: process.execPath,
    args: [ENTRIES.coordinator],
    env: {
      ...COORDINATOR_DEFAULTS,
      ...process.env,
      DATABASE_URL: o.databaseUrl,
      NATS_URL: o.natsUrl,
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: String(o.grpcPort),
      METRICS_HOST: "127.0.0.1",
      METRICS_PORT: String(o.metricsPort),
      ASSETS_FILE,
      ASSET_CONTRACT_OVERRIDES: JSON.stringify(o.contractOverrides),
      PIX_PROVIDER: "starkbank",
      STARKBANK_BASE_URL: o.starkbank.url,
      STARKBANK_PROJECT_ID: o.starkbank.projectId,
      STARKBANK_PRIVATE_KEY: o.starkbank.privateKeyPem,
    },
  });
  // Migrations run before this line on a first start.
  await child.waitFor((_l, r) => r?.msg === "Coordinator ready", "that it is ready", 90_000);
}

export async function startGateway(
  sup: Supervisor,
  o: { host: string; port: number; grpcPort: number; jwtSecret: string },
): Promise<void> {
  const child = sup.start({
    name: "gateway",
    cmd: process.execPath,
    args: [ENTRIES.gateway],
    env: {
      ...process.env,
      PORT: String(o.port),
      HOST: o.host,
      COORDINATOR_GRPC_URL: `127.0.0.1:${o.grpcPort}`,
      JWT_SECRET: o.jwtSecret,
    },
  });
  await child.waitFor((_l, r) => r?.msg === "Gateway listening", "that it listens", 30_000);
}

/**
 * The EVM agent's seed, through the runtime's key source (agents/runtime/src/keys): from the
 * Vault stand-in when it runs (as in production, with a token that may only read it), else the
 * development source SEED_SOURCE=env. Both hold the same mnemonic, so the addresses never change.
 */
export interface AgentSeed {
  mnemonic: string;
  vault?: { url: string; token: string; path: string };
}

/** The key source's variables: Vault with the agent's token, else the development variable. */
function seedEnvOf(seed: AgentSeed, devVariable: string): Record<string, string> {
  const v = seed.vault;
  return v ? { SEED_SOURCE: "vault", VAULT_ADDR: v.url, VAULT_TOKEN: v.token, VAULT_SEED_PATH: v.path } : { SEED_SOURCE: "env", [devVariable]: seed.mnemonic };
}

export async function startEvmAgent(
  sup: Supervisor,
  o: { grpcPort: number; metricsPort: number; rpcUrl: string; wsUrl: string; contractOverrides: Record<string, string>; seed: AgentSeed },
): Promise<void> {
  const seedEnv = seedEnvOf(o.seed, "EVM_SEED_MNEMONIC");
  const child = sup.start({
    name: "agent-evm-anvil",
    cmd: process.execPath,
    args: [ENTRIES.agentEvm],
    env: {
      ...process.env,
      EVM_CONFIG: EVM_ANVIL_CONFIG,
      ANVIL_RPC_HTTP: o.rpcUrl,
      ANVIL_RPC_WS: o.wsUrl,
      COORDINATOR_ADDR: `127.0.0.1:${o.grpcPort}`,
      METRICS_HOST: "127.0.0.1",
      METRICS_PORT: String(o.metricsPort),
      ASSET_CONTRACT_OVERRIDES: JSON.stringify(o.contractOverrides),
      ...seedEnv,
    },
  });
  // A lease left by a crashed earlier run lapses after LEASE_TTL_MS; then this one is granted.
  await child.waitFor((_l, r) => r?.msg === "Lease granted; following the chain", "that it follows the chain", 60_000);
}

/** The UTXO agent (agents/bitcoin) on the local litecoind; resolves with its hot wallet once it follows the chain. */
export async function startLtcAgent(
  sup: Supervisor,
  o: { grpcPort: number; metricsPort: number; rpcUrl: string; rpcUser: string; rpcPassword: string; seed: AgentSeed },
): Promise<{ hotWallet: string | null }> {
  const child = sup.start({
    name: "agent-bitcoin-litecoin-regtest",
    cmd: process.execPath,
    args: [ENTRIES.agentBitcoin],
    env: {
      ...process.env,
      UTXO_CONFIG: UTXO_LITECOIN_REGTEST_CONFIG,
      LTC_RPC_URL: o.rpcUrl,
      LTC_RPC_USER: o.rpcUser,
      LTC_RPC_PASSWORD: o.rpcPassword,
      COORDINATOR_ADDR: `127.0.0.1:${o.grpcPort}`,
      METRICS_HOST: "127.0.0.1",
      METRICS_PORT: String(o.metricsPort),
      ...seedEnvOf(o.seed, "UTXO_SEED_MNEMONIC"),
    },
  });
  const configured = await child.waitFor((_l, r) => r?.msg === "UTXO agent configured", "its configuration", 60_000);
  await child.waitFor((_l, r) => r?.msg === "Lease granted; following the chain", "that it follows the chain", 60_000);
  const hot = (JSON.parse(configured) as { hot_wallet?: unknown }).hot_wallet;
  return { hotWallet: typeof hot === "string" ? hot : null };
}
