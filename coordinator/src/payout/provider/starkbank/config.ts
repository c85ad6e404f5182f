import { env, parseConfig, z } from "@ponte/common";
import type { StarkbankProviderOptions } from "./index.js";

/**
 * Environment for the Stark Bank adapter. No defaults for the URL or credentials: a payout sent
 * to the wrong environment, or with a placeholder key, must fail at start-up, not at pay time.
 */
export const StarkbankEnv = z.object({
  STARKBANK_BASE_URL: env.url(),
  STARKBANK_PROJECT_ID: z.string().regex(/^\d+$/, "a numeric project id"),
  /** PEM (SEC1 or PKCS#8) of the project's secp256k1 private key; "\n" escapes are accepted. */
  STARKBANK_PRIVATE_KEY: z.string().min(1).refine((s) => s.includes("PRIVATE KEY"), "a PEM private key"),
  STARKBANK_WORKSPACE_ID: z.string().regex(/^\d+$/).optional(),
  STARKBANK_TIMEOUT_MS: env.int(15_000, 100),
  STARKBANK_WEBHOOK_MAX_AGE_S: env.int(3_600, 1),
});
export type StarkbankEnv = z.output<typeof StarkbankEnv>;

export function starkbankOptionsFromEnv(input: Record<string, string | undefined> = process.env): StarkbankProviderOptions {
  const c = parseConfig(StarkbankEnv, input);
  return {
    baseUrl: c.STARKBANK_BASE_URL,
    accessId: `project/${c.STARKBANK_PROJECT_ID}`,
    privateKeyPem: c.STARKBANK_PRIVATE_KEY,
    timeoutMs: c.STARKBANK_TIMEOUT_MS,
    webhookMaxAgeMs: c.STARKBANK_WEBHOOK_MAX_AGE_S * 1000,
    ...(c.STARKBANK_WORKSPACE_ID ? { workspaceId: c.STARKBANK_WORKSPACE_ID } : {}),
  };
}
