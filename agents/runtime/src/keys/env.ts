// The development key source: the seed straight from an environment variable (e.g.
// EVM_SEED_MNEMONIC). Only ever chosen explicitly (SEED_SOURCE=env) and refused by
// loadSeedConfig when NODE_ENV=production; it exists because the local stack and the
// end-to-end tests run agents without a Vault. The value is never put into an error or a log.
import { PonteError } from "@ponte/common";
import type { KeySource } from "./source.js";
import type { EnvSeedConfig } from "./types.js";

export const DEFAULT_DEV_SEED_VARIABLE = "SEED_MNEMONIC";

export function createEnvSource(cfg: EnvSeedConfig): KeySource {
  const where = { source: "env", variable: cfg.variable };
  let closed = false;
  const closedError = () => new PonteError("KEY_SOURCE_UNAVAILABLE", "The seed handle is closed", { ...where, reason: "closed" });
  return {
    name: "env",
    ref: `env:${cfg.variable}`,
    where,
    async read() {
      if (closed) throw closedError();
      if (cfg.value.trim() === "") throw new PonteError("KEY_SOURCE_NOT_FOUND", `${cfg.variable} is empty`, { ...where, reason: "empty" });
      return { raw: cfg.value, version: null };
    },
    // Nothing can revoke an environment variable behind our back.
    async check() {
      if (closed) throw closedError();
    },
    close() {
      closed = true;
    },
  };
}
