#!/usr/bin/env node
// One process per EVM network: EVM_CONFIG names the network's JSON config, EVM_SEED_MNEMONIC the
// seed, COORDINATOR_ADDR the coordinator (see README).
import { createAgentCommon } from "@ponte/agent-runtime";
import { ConfigError, installSignalHandlers } from "@ponte/common";
import { startEvmAgent } from "./agent/index.js";
import { loadEvmConfig } from "./config/index.js";

function fail(err: unknown): never {
  // A config error is a message for the operator, not a stack trace; it never contains the seed.
  process.stderr.write(`${err instanceof ConfigError ? err.message : String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
}

let common: ReturnType<typeof createAgentCommon>;
let loaded: ReturnType<typeof loadEvmConfig>;
try {
  common = createAgentCommon("agent-evm");
  loaded = loadEvmConfig(process.env);
} catch (err) {
  fail(err);
}
installSignalHandlers(common.shutdown);
process.on("unhandledRejection", (err) => {
  common.logger.fatal({ err }, "Unhandled rejection; shutting down");
  void common.shutdown.shutdown("unhandled rejection").then(() => process.exit(1));
});

try {
  await startEvmAgent(common, loaded);
} catch (err) {
  if (err instanceof ConfigError) fail(err);
  common.logger.fatal({ err }, "The EVM agent could not start");
  await common.shutdown.shutdown("start-up failure");
  process.exit(1);
}
