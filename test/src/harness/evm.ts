import { startProcess, type RunningProcess } from "@ponte/common/testing";
import { AGENT_MNEMONIC, deployToken, startAnvil, type Anvil } from "@ponte/agent-evm/testing";
import type { Contract } from "ethers";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Stack } from "./stack.js";

export { AGENT_MNEMONIC, mined, startAnvil, type Anvil } from "@ponte/agent-evm/testing";

const agentEntry = fileURLToPath(new URL("../../../agents/evm/dist/main.js", import.meta.url));
const anvilConfig = fileURLToPath(new URL("../../../agents/evm/config/anvil.json", import.meta.url));

export interface EvmChain {
  anvil: Anvil;
  token: Contract;
  tokenAddress: string;
  /** Environment for the coordinator and the agent: the deployed token replaces the registry's placeholder. */
  overrides: Record<string, string>;
  configFile: string;
}

/** anvil (automine) with the demo USDT (6 decimals) deployed from the first funded account. */
export async function startEvmChain(): Promise<EvmChain> {
  const anvil = await startAnvil();
  const token = await deployToken(anvil.wallet(0), "USDT", 6);
  const tokenAddress = (await token.getAddress()).toLowerCase();
  const dir = mkdtempSync(join(tmpdir(), "ponte-evm-"));
  const config = JSON.parse(readFileSync(anvilConfig, "utf8")) as Record<string, unknown>;
  config.rpc = [{ http: anvil.http, ws: anvil.ws }];
  config.poll_interval_ms = 200;
  const configFile = join(dir, "anvil.json");
  writeFileSync(configFile, JSON.stringify(config));
  return { anvil, token, tokenAddress, configFile, overrides: { ASSET_CONTRACT_OVERRIDES: JSON.stringify({ "anvil:USDT": tokenAddress }) } };
}

/** The real EVM agent process, following `chain` for `stack`'s coordinator. */
export function startEvmAgent(stack: Stack, chain: EvmChain, opts: { env?: Record<string, string>; name?: string } = {}): Promise<RunningProcess> {
  return startProcess({
    name: opts.name ?? "agent-evm",
    entry: agentEntry,
    env: {
      EVM_CONFIG: chain.configFile,
      // The development key source, chosen explicitly (refused when NODE_ENV=production);
      // opts.env may switch to SEED_SOURCE=vault.
      SEED_SOURCE: "env",
      EVM_SEED_MNEMONIC: AGENT_MNEMONIC,
      COORDINATOR_ADDR: stack.grpcTarget,
      METRICS_PORT: "0",
      POOL_CHECK_INTERVAL_MS: "200",
      LOG_LEVEL: "info",
      ...chain.overrides,
      ...opts.env,
    },
    readyLog: "Agent started",
  });
}

/** Another token calling itself USDT, at another address: deposits of it must be ignored. */
export async function deployLookalike(chain: EvmChain): Promise<Contract> {
  return deployToken(chain.anvil.wallet(0), "USDT", 6);
}
