import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: this file is local/src/paths.ts (vitest) or local/dist/paths.js (node). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export const DEFAULT_STATE_DIR = join(REPO_ROOT, ".ponte");

/** Built entry points of the pieces npm start runs. */
export const ENTRIES = {
  coordinator: join(REPO_ROOT, "coordinator/dist/main.js"),
  gateway: join(REPO_ROOT, "gateway/dist/main.js"),
  agentEvm: join(REPO_ROOT, "agents/evm/dist/main.js"),
  agentBitcoin: join(REPO_ROOT, "agents/bitcoin/dist/main.js"),
  starkbank: join(REPO_ROOT, "test/dist/standins/starkbank/main.js"),
  vault: join(REPO_ROOT, "test/dist/standins/vault/main.js"),
} as const;

export const ASSETS_FILE = join(REPO_ROOT, "coordinator/assets/local.json");
export const EVM_ANVIL_CONFIG = join(REPO_ROOT, "agents/evm/config/anvil.json");
/** The UTXO agent's config for the local litecoind (its RPC wiring comes from LTC_RPC_* variables). */
export const UTXO_LITECOIN_REGTEST_CONFIG = join(REPO_ROOT, "agents/bitcoin/config/litecoin-regtest.json");
export const TOKEN_ARTIFACT = join(REPO_ROOT, "agents/evm/test-contracts/TestToken.json");
