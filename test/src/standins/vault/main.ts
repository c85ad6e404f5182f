// The Vault stand-in as its own process, like `vault server -dev`. Prints one JSON line
// {"msg":"Vault stand-in process ready","port":…,"url":…} on stdout once it accepts requests.
//   PORT                      listen port (0 = any free one)
//   HOST                      127.0.0.1 by default
//   VAULT_DEV_ROOT_TOKEN      the root token (VAULT_DEV_ROOT_TOKEN_ID, the dev server's name, also works)
//   VAULT_STANDIN_UNSEAL_KEY  the key sys/unseal accepts; random when unset
//   VAULT_STANDIN_SEED_FILE   JSON: {policies, secrets, tokens, approle, kv_mounts, approle_mounts}
//   VAULT_STANDIN_SEALED      "true" to start sealed
import { readFileSync } from "node:fs";
import { createLogger, createShutdown, env, installSignalHandlers, parseConfig, z } from "@ponte/common";
import { startVaultStandin } from "./index.js";
import { VaultStandinSeedSchema } from "./model.js";

const blankAsUnset = (v: unknown) => (v === "" ? undefined : v);

const Env = z
  .object({
    PORT: env.port(0),
    HOST: z.string().default("127.0.0.1"),
    VAULT_DEV_ROOT_TOKEN: z.preprocess(blankAsUnset, z.string().optional()),
    VAULT_DEV_ROOT_TOKEN_ID: z.preprocess(blankAsUnset, z.string().optional()),
    VAULT_STANDIN_UNSEAL_KEY: z.preprocess(blankAsUnset, z.string().optional()),
    VAULT_STANDIN_SEED_FILE: z.preprocess(blankAsUnset, z.string().optional()),
    VAULT_STANDIN_SEALED: env.bool(false),
  })
  .refine((c) => c.VAULT_DEV_ROOT_TOKEN ?? c.VAULT_DEV_ROOT_TOKEN_ID, {
    path: ["VAULT_DEV_ROOT_TOKEN"],
    message: "is required (the root token tests and set-up scripts use)",
  });

const c = parseConfig(Env, process.env);
const logger = createLogger({ name: "vault-standin" });
const seed = c.VAULT_STANDIN_SEED_FILE
  ? parseConfig(VaultStandinSeedSchema, JSON.parse(readFileSync(c.VAULT_STANDIN_SEED_FILE, "utf8")))
  : undefined;
const standin = await startVaultStandin({
  port: c.PORT,
  host: c.HOST,
  rootToken: (c.VAULT_DEV_ROOT_TOKEN ?? c.VAULT_DEV_ROOT_TOKEN_ID)!,
  ...(c.VAULT_STANDIN_UNSEAL_KEY ? { unsealKey: c.VAULT_STANDIN_UNSEAL_KEY } : {}),
  ...(seed ? { seed } : {}),
  logger,
});
if (c.VAULT_STANDIN_SEALED) standin.seal();
logger.info({ port: standin.port, url: standin.url, sealed: standin.sealed }, "Vault stand-in process ready");

const shutdown = createShutdown(logger);
shutdown.onShutdown("http", () => standin.stop());
installSignalHandlers(shutdown);
