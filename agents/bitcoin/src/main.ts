#!/usr/bin/env node
// One process per UTXO network (Bitcoin, Litecoin): UTXO_CONFIG names the network's JSON config, SEED_SOURCE where the
// seed is (vault; keystore or env for local development), COORDINATOR_ADDR the coordinator
// (see README).
import { createAgentCommon } from "@ponte/agent-runtime";
import { loadSeed, type SeedHandle } from "@ponte/agent-runtime/keys";
import { ConfigError, installSignalHandlers, PonteError } from "@ponte/common";
import { startUtxoAgent } from "./agent/index.js";
import { loadUtxoConfig } from "./config/index.js";

function fail(err: unknown): never {
  // A config error is a message for the operator, not a stack trace; it never contains the seed.
  process.stderr.write(`${err instanceof ConfigError ? err.message : String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
}

let common: ReturnType<typeof createAgentCommon>;
let loaded: ReturnType<typeof loadUtxoConfig>;
try {
  common = createAgentCommon("agent-bitcoin");
  loaded = loadUtxoConfig(process.env);
} catch (err) {
  fail(err);
}
installSignalHandlers(common.shutdown);
process.on("unhandledRejection", (err) => {
  common.logger.fatal({ err }, "Unhandled rejection; shutting down");
  void common.shutdown.shutdown("unhandled rejection").then(() => process.exit(1));
});

// The seed first: an agent that cannot sign must not take the lease and then fail every
// transfer. Vault unreachable, sealed, a bad token or a missing secret stop it here, with the
// key source's message (address, mount, path, status — never a token or the seed).
let seed: SeedHandle;
try {
  seed = await loadSeed(loaded.seed, common.logger);
} catch (err) {
  if (!(err instanceof PonteError)) throw err;
  common.logger.fatal({ code: err.code, details: err.details }, `The UTXO agent cannot read its seed: ${err.message}`);
  process.stderr.write(`The UTXO agent cannot read its seed (${err.code}): ${err.message}\n`);
  process.exit(1);
}
common.shutdown.onShutdown("seed", () => seed.close());

try {
  await startUtxoAgent(common, { config: loaded.config, seed });
} catch (err) {
  if (err instanceof ConfigError) fail(err);
  if (err instanceof PonteError && err.code.startsWith("KEY_SOURCE_")) {
    process.stderr.write(`The UTXO agent cannot use its seed (${err.code}): ${err.message}\n`);
  }
  common.logger.fatal({ err }, "The UTXO agent could not start");
  await common.shutdown.shutdown("start-up failure");
  process.exit(1);
}
