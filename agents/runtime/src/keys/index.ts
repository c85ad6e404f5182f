// Where an agent's master seed comes from: Vault KV v2 in production, an encrypted keystore
// file or (explicitly, never in production) an environment variable in local development. The seed stays in this process's memory: loadSeed() returns a
// handle whose toJSON/inspect show only the source, reference and fingerprint.
import { inspect } from "node:util";
import { PonteError, type Logger } from "@ponte/common";
import { parseSeedMaterial, wipe, describe, type SeedMaterial } from "./material.js";
import { createEnvSource } from "./env.js";
import { createKeystoreSource } from "./keystore.js";
import type { KeySource } from "./source.js";
import type { SeedAccess, SeedHandle, SeedSourceConfig } from "./types.js";
import { closedError, createVaultSource } from "./vault.js";

export type { SeedKind } from "./material.js";
export { parseSeedMaterial } from "./material.js";
export type { EnvSeedConfig, KeystoreSeedConfig, SeedAccess, SeedHandle, SeedSourceConfig, VaultAuthConfig, VaultSeedConfig } from "./types.js";
export {
  createKeystore,
  decryptKeystore,
  writeKeystoreFile,
  KeystoreFileSchema,
  KEYSTORE_DEFAULT_N,
  type CreateKeystoreOptions,
  type KeystoreFile,
} from "./keystore.js";
export { loadSeedConfig, seedEnvSchema, SeedEnv, type SeedEnvOptions } from "./config.js";
export { DEFAULT_DEV_SEED_VARIABLE } from "./env.js";
export { DEFAULT_APPROLE_MOUNT, DEFAULT_KV_MOUNT, DEFAULT_SEED_FIELD, DEFAULT_VAULT_TIMEOUT_MS } from "./vault.js";

/**
 * Reads the seed once and returns a handle to it. Throws a PonteError with code
 * KEY_SOURCE_UNAVAILABLE (unreachable, sealed; retryable), KEY_SOURCE_DENIED (bad token or
 * AppRole credentials, wrong passphrase), KEY_SOURCE_NOT_FOUND (no secret, no file) or
 * KEY_SOURCE_INVALID (field missing, not a seed): the agent should refuse to start.
 */
export async function loadSeed(config: SeedSourceConfig, logger: Logger): Promise<SeedHandle> {
  const source =
    config.source === "vault"
      ? createVaultSource(config, logger)
      : config.source === "keystore"
        ? createKeystoreSource(config, logger)
        : createEnvSource(config);
  let material: SeedMaterial;
  let version: number | null;
  try {
    const first = await source.read();
    material = parseSeedMaterial(first.raw, source.where);
    version = first.version;
  } catch (e) {
    source.close();
    throw e;
  }
  logger.info(
    { component: "key-source", key_ref: source.ref, version, seed_kind: material.kind, seed_fingerprint: material.fingerprint },
    "Seed loaded",
  );
  return createHandle(source, material, version, logger);
}

function createHandle(source: KeySource, material: SeedMaterial, initialVersion: number | null, logger: Logger): SeedHandle {
  const log = logger.child({ component: "key-source", key_ref: source.ref });
  let version = initialVersion;
  let closed = false;
  let checking: Promise<void> | null = null;

  const open = () => {
    if (closed) throw closedError(source.where);
  };
  const summary = () => ({ source: source.name, ref: source.ref, kind: material.kind, fingerprint: material.fingerprint, version });

  const access: SeedAccess = {
    kind: material.kind,
    fingerprint: material.fingerprint,
    mnemonic() {
      open();
      if (!material.phrase) {
        throw new PonteError("KEY_SOURCE_INVALID", `The seed at ${describe(source.where)} is a hex seed, not a mnemonic`, {
          ...source.where,
          reason: "not_a_mnemonic",
        });
      }
      return material.phrase.toString("utf8");
    },
    seedBytes() {
      open();
      return new Uint8Array(material.seed);
    },
  };
  hideSecrets(access, summary);

  async function ensureFresh(): Promise<void> {
    open();
    // Concurrent signers share one round trip to Vault.
    checking ??= source.check().finally(() => {
      checking = null;
    });
    try {
      await checking;
    } catch (e) {
      const err = e instanceof PonteError ? e : new PonteError("KEY_SOURCE_UNAVAILABLE", "The key source check failed", { ...source.where });
      log.warn({ code: err.code, reason: err.details.reason, status: err.details.status }, "Key source check failed; signing is refused");
      throw err;
    }
  }

  const handle: SeedHandle = {
    source: source.name,
    ref: source.ref,
    get version() {
      return version;
    },
    kind: access.kind,
    fingerprint: access.fingerprint,
    mnemonic: access.mnemonic,
    seedBytes: access.seedBytes,
    ensureFresh,
    async withSeed(fn) {
      await ensureFresh();
      return fn(access);
    },
    async refresh() {
      open();
      const next = await source.read();
      const fresh = parseSeedMaterial(next.raw, source.where);
      const changed = fresh.fingerprint !== material.fingerprint;
      const seen = fresh.fingerprint;
      wipe(fresh);
      if (changed) {
        log.error({ seed_fingerprint: material.fingerprint, found_fingerprint: seen, version: next.version }, "The seed at the key source changed; keeping the one loaded");
        throw new PonteError(
          "KEY_SOURCE_INVALID",
          `The seed at ${describe(source.where)} changed since it was loaded (fingerprint ${material.fingerprint} → ${seen}); restart the agent deliberately if the change is intended`,
          { ...source.where, reason: "seed_changed", seed_fingerprint: material.fingerprint, found_fingerprint: seen, version: next.version },
        );
      }
      if (next.version !== version) log.info({ version: next.version, previous_version: version }, "Seed re-read");
      version = next.version;
    },
    async close() {
      if (closed) return;
      closed = true;
      wipe(material);
      source.close();
    },
  };
  hideSecrets(handle, summary);
  return handle;
}

// JSON.stringify, pino and console.log see what the seed is, never the seed.
function hideSecrets(o: object, summary: () => Record<string, unknown>): void {
  Object.defineProperty(o, "toJSON", { value: summary, enumerable: false });
  Object.defineProperty(o, inspect.custom, { value: () => `SeedHandle ${inspect(summary())}`, enumerable: false });
}
