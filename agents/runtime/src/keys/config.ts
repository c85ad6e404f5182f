// The environment form of a key source. Secrets (VAULT_TOKEN, VAULT_SECRET_ID,
// KEYSTORE_PASSPHRASE, the development seed variable) have no defaults, and no error message
// repeats a value.
import { ConfigError, env, parseConfig, z } from "@ponte/common";
import { DEFAULT_DEV_SEED_VARIABLE } from "./env.js";
import type { SeedSourceConfig } from "./types.js";
import { DEFAULT_APPROLE_MOUNT, DEFAULT_KV_MOUNT, DEFAULT_SEED_FIELD, DEFAULT_VAULT_TIMEOUT_MS, VAULT_PATH_RE } from "./vault.js";

// An empty variable (`VAULT_TOKEN=` in a .env file) means "not set".
const blankAsUnset = (v: unknown) => (v === "" ? undefined : v);
const optional = <S extends z.ZodType>(s: S) => z.preprocess(blankAsUnset, s.optional());
const vaultPath = (example: string) =>
  z.string().regex(VAULT_PATH_RE, { error: `must be slash-separated segments of letters, digits, _ . @ - (e.g. ${example})` });
// Tokens and ids pasted from files often end in a newline.
const credential = z.string().trim().min(1, { error: "is empty" });

export interface SeedEnvOptions {
  /** VAULT_SEED_PATH when unset, per network family (e.g. "ponte/agents/evm"). */
  defaultPath?: string;
  /**
   * The variable SEED_SOURCE=env reads the seed from (e.g. "EVM_SEED_MNEMONIC");
   * SEED_MNEMONIC when unset.
   */
  devSeedVariable?: string;
}

export function seedEnvSchema(opts: SeedEnvOptions = {}) {
  return z
    .object({
      SEED_SOURCE: z.enum(["vault", "keystore", "env"], {
        error: "is required: vault (production), or keystore or env (local development only)",
      }),
      NODE_ENV: optional(z.string()),
      VAULT_ADDR: optional(z.string().url({ error: "must be a URL, e.g. https://vault.internal:8200" })),
      VAULT_TOKEN: optional(credential),
      VAULT_ROLE_ID: optional(credential),
      VAULT_SECRET_ID: optional(credential),
      VAULT_APPROLE_MOUNT: z.preprocess(blankAsUnset, vaultPath("approle").default(DEFAULT_APPROLE_MOUNT)),
      VAULT_KV_MOUNT: z.preprocess(blankAsUnset, vaultPath("secret").default(DEFAULT_KV_MOUNT)),
      VAULT_SEED_PATH: z.preprocess(
        blankAsUnset,
        opts.defaultPath === undefined ? vaultPath("ponte/agents/evm").optional() : vaultPath(opts.defaultPath).default(opts.defaultPath),
      ),
      VAULT_SEED_FIELD: z.preprocess(blankAsUnset, z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: "must be a plain key name" }).default(DEFAULT_SEED_FIELD)),
      VAULT_NAMESPACE: optional(z.string()),
      VAULT_TIMEOUT_MS: z.preprocess(blankAsUnset, env.int(DEFAULT_VAULT_TIMEOUT_MS, 100)),
      KEYSTORE_FILE: optional(z.string().min(1)),
      KEYSTORE_PASSPHRASE: optional(z.string().min(1, { error: "is empty" })),
    })
    .superRefine((e, ctx) => {
      const need = (field: string, message: string) => ctx.addIssue({ code: "custom", path: [field], message });
      if (e.SEED_SOURCE === "env") {
        // A seed in the environment is readable by anything that can read the process's
        // environment: tolerable on a laptop, never on a production host.
        if (e.NODE_ENV === "production") need("SEED_SOURCE", "env is for local development and is refused when NODE_ENV=production: use vault");
        return;
      }
      if (e.SEED_SOURCE === "keystore") {
        if (!e.KEYSTORE_FILE) need("KEYSTORE_FILE", "is required when SEED_SOURCE=keystore");
        if (!e.KEYSTORE_PASSPHRASE) need("KEYSTORE_PASSPHRASE", "is required when SEED_SOURCE=keystore");
        return;
      }
      if (!e.VAULT_ADDR) need("VAULT_ADDR", "is required when SEED_SOURCE=vault");
      if (!e.VAULT_SEED_PATH) need("VAULT_SEED_PATH", "is required when SEED_SOURCE=vault (the KV v2 path of the seed, e.g. ponte/agents/evm)");
      const approle = e.VAULT_ROLE_ID !== undefined || e.VAULT_SECRET_ID !== undefined;
      if (e.VAULT_TOKEN && approle) {
        need("VAULT_TOKEN", "set either VAULT_TOKEN or VAULT_ROLE_ID with VAULT_SECRET_ID, not both");
      } else if (approle) {
        if (!e.VAULT_ROLE_ID) need("VAULT_ROLE_ID", "is required with VAULT_SECRET_ID (AppRole auth)");
        if (!e.VAULT_SECRET_ID) need("VAULT_SECRET_ID", "is required with VAULT_ROLE_ID (AppRole auth)");
      } else if (!e.VAULT_TOKEN) {
        need("VAULT_TOKEN", "is required when SEED_SOURCE=vault, unless VAULT_ROLE_ID and VAULT_SECRET_ID are set (AppRole auth)");
      }
    });
}

/** The env schema with no per-family default path. */
export const SeedEnv = seedEnvSchema();

/** Reads the key source from the environment once, at start-up; ConfigError names each bad variable. */
export function loadSeedConfig(input: NodeJS.ProcessEnv = process.env, opts: SeedEnvOptions = {}): SeedSourceConfig {
  const e = parseConfig(seedEnvSchema(opts), input);
  if (e.SEED_SOURCE === "env") {
    const variable = opts.devSeedVariable ?? DEFAULT_DEV_SEED_VARIABLE;
    const value = input[variable];
    if (value === undefined || value.trim() === "") throw new ConfigError([{ field: variable, message: "is required when SEED_SOURCE=env" }]);
    return { source: "env", variable, value };
  }
  if (e.SEED_SOURCE === "keystore") {
    return { source: "keystore", file: e.KEYSTORE_FILE!, passphrase: e.KEYSTORE_PASSPHRASE! };
  }
  return {
    source: "vault",
    address: e.VAULT_ADDR!,
    mount: e.VAULT_KV_MOUNT,
    path: e.VAULT_SEED_PATH!,
    field: e.VAULT_SEED_FIELD,
    auth: e.VAULT_TOKEN
      ? { method: "token", token: e.VAULT_TOKEN }
      : { method: "approle", roleId: e.VAULT_ROLE_ID!, secretId: e.VAULT_SECRET_ID!, mount: e.VAULT_APPROLE_MOUNT },
    timeoutMs: e.VAULT_TIMEOUT_MS,
    ...(e.VAULT_NAMESPACE ? { namespace: e.VAULT_NAMESPACE } : {}),
  };
}
