import { AGENT_MNEMONIC } from "@ponte/agent-evm/testing";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { profileArgs, startChild, type Child } from "../core/proc.js";
import type { AnvilNode } from "./anvil.js";
import { ANVIL_CONFIG, EVM_AGENT_MAIN } from "./paths.js";
import type { Sql } from "./postgres.js";

/**
 * The real EVM agent (compiled main.js) following `anvil` from its head, reporting to the
 * coordinator at `grpcTarget`; `config` overrides fields of the shipped anvil config.
 */
export async function startEvmAgent(o: {
  name: string;
  anvil: AnvilNode;
  grpcTarget: string;
  workDir: string;
  logDir: string;
  overrides: string;
  config?: Record<string, unknown>;
}): Promise<Child> {
  const config = JSON.parse(readFileSync(ANVIL_CONFIG, "utf8")) as Record<string, unknown>;
  config.rpc = [{ http: o.anvil.http, ws: o.anvil.ws }];
  config.start_height = "latest";
  Object.assign(config, o.config);
  const configFile = join(o.workDir, `${o.name}.json`);
  writeFileSync(configFile, JSON.stringify(config));
  return startChild({
    name: o.name,
    args: [...profileArgs(), EVM_AGENT_MAIN],
    logDir: o.logDir,
    ready: "Starting the follower",
    timeoutMs: 60_000,
    env: {
      EVM_CONFIG: configFile,
      SEED_SOURCE: "env",
      EVM_SEED_MNEMONIC: AGENT_MNEMONIC,
      SEED_MNEMONIC: AGENT_MNEMONIC,
      COORDINATOR_ADDR: o.grpcTarget,
      METRICS_PORT: "0",
      LOG_LEVEL: "info",
      ASSET_CONTRACT_OVERRIDES: o.overrides,
    },
  });
}

/** Waits until the agent has reported its first block (the head when it started): it is following. */
export async function waitFollowing(sql: Sql, network: string): Promise<void> {
  for (let i = 0; ; i++) {
    const [c] = await sql`SELECT 1 FROM chain_cursors WHERE network = ${network}`;
    if (c) return;
    if (i > 600) throw new Error("the agent never reported its first block");
    await sleep(50);
  }
}
