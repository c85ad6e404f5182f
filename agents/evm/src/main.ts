#!/usr/bin/env node
// One process per EVM network: EVM_CONFIG names the network's JSON config, SEED_SOURCE where the
// seed is (vault; keystore or env for local development), COORDINATOR_ADDR the coordinator
// (see README).
//   ponte-agent-evm custodial-address --index N [--count K]
// prints, one JSON line each, the custodial wallets at those indexes (what ops registers with
// PUT /api/v1/admin/custodial-accounts/{network}/{user_id}) and exits, without starting the agent.
import { createAgentCommon } from "@ponte/agent-runtime";
import { loadSeed, type SeedHandle } from "@ponte/agent-runtime/keys";
import { ConfigError, installSignalHandlers, PonteError } from "@ponte/common";
import { parseArgs } from "node:util";
import { startEvmAgent } from "./agent/index.js";
import { loadEvmConfig } from "./config/index.js";
import { createEvmKeys, EVM_CUSTODIAL_ACCOUNT_PATH } from "./keys/index.js";

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

// The seed first: an agent that cannot sign must not take the lease and then fail every
// transfer. Vault unreachable, sealed, a bad token or a missing secret stop it here, with the
// key source's message (address, mount, path, status — never a token or the seed).
let seed: SeedHandle;
try {
  seed = await loadSeed(loaded.seed, common.logger);
} catch (err) {
  if (!(err instanceof PonteError)) throw err;
  common.logger.fatal({ code: err.code, details: err.details }, `The EVM agent cannot read its seed: ${err.message}`);
  process.stderr.write(`The EVM agent cannot read its seed (${err.code}): ${err.message}\n`);
  process.exit(1);
}
common.shutdown.onShutdown("seed", () => seed.close());

if (process.argv[2] === "custodial-address") {
  let index: number;
  let count: number;
  try {
    const { values } = parseArgs({ args: process.argv.slice(3), options: { index: { type: "string" }, count: { type: "string", default: "1" } }, strict: true });
    index = Number(values.index);
    count = Number(values.count);
    if (!/^\d+$/.test(values.index ?? "") || index > 0x7fff_ffff || !Number.isInteger(count) || count < 1 || count > 1000 || index + count - 1 > 0x7fff_ffff) {
      throw new Error("--index must be an integer from 0 to 2147483647 and --count from 1 to 1000");
    }
  } catch (err) {
    process.stderr.write(`usage: ponte-agent-evm custodial-address --index N [--count K]\n${(err as Error).message}\n`);
    process.exit(2);
  }
  const keys = await createEvmKeys(seed);
  for (let i = index; i < index + count; i++) {
    const line = { network: loaded.config.network, derivation_index: i, path: `${EVM_CUSTODIAL_ACCOUNT_PATH}/${i}`, address: keys.custodialAddress(i) };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  await seed.close();
  process.exit(0);
}

try {
  await startEvmAgent(common, { config: loaded.config, seed });
} catch (err) {
  if (err instanceof ConfigError) fail(err);
  if (err instanceof PonteError && err.code.startsWith("KEY_SOURCE_")) {
    process.stderr.write(`The EVM agent cannot use its seed (${err.code}): ${err.message}\n`);
  }
  common.logger.fatal({ err }, "The EVM agent could not start");
  await common.shutdown.shutdown("start-up failure");
  process.exit(1);
}
