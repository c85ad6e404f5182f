// The stand-ins for the outside world: Stark Bank's PIX API and HashiCorp Vault.
import { writeFileSync } from "node:fs";
import { ENTRIES } from "../paths.js";
import type { Supervisor } from "../supervisor/index.js";

/** The demo seller: a valid CPF (a well-known test number), its holder and bank accounts. */
export const DEMO_USER = {
  sub: "demo-user",
  document: "52998224725",
  name: "Maria da Silva",
  pixKey: { type: "cpf" as const, key: "52998224725" },
  failingPixKey: { type: "email" as const, key: "maria.falha@ponte.example" },
};

/** Where the EVM agent's seed lives in Vault (KV v2 under mount "secret"). */
export const EVM_SEED_PATH = "ponte/agents/evm";
/** Where the UTXO agent's seed lives (the agent's default VAULT_SEED_PATH). */
export const UTXO_SEED_PATH = "ponte/agents/bitcoin";

async function admin(base: string, method: string, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${base}${path}`, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`Stark Bank stand-in ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
}

export async function startStarkbankStandin(
  sup: Supervisor,
  o: { port: number; projectId: string; publicKeyPem: string; webhookUrl: string },
): Promise<{ url: string }> {
  const child = sup.start({
    name: "starkbank-standin",
    cmd: process.execPath,
    args: [ENTRIES.starkbank],
    env: {
      ...process.env,
      PORT: String(o.port),
      HOST: "127.0.0.1",
      // Slow enough that the demo shows PAYOUT_PENDING, fast enough not to bore.
      STANDIN_PROCESSING_DELAY_MS: "300",
      STANDIN_SETTLE_DELAY_MS: "700",
    },
  });
  await child.waitFor((_l, r) => r?.msg === "Stark Bank stand-in listening", "that it listens", 20_000);
  const url = `http://127.0.0.1:${o.port}`;
  await admin(url, "POST", "/_admin/projects", { id: o.projectId, publicKeyPem: o.publicKeyPem });
  const holder = { name: DEMO_USER.name, taxId: DEMO_USER.document, ispb: "20018183", bankName: "Stark Bank", branchCode: "0001" };
  await admin(url, "POST", "/_admin/keys", {
    keys: [
      { ...holder, key: DEMO_USER.pixKey.key, type: DEMO_USER.pixKey.type, accountNumber: "1234567-8" },
      // Another account of the same holder, whose bank rejects every transfer.
      { ...holder, key: DEMO_USER.failingPixKey.key, type: DEMO_USER.failingPixKey.type, accountNumber: "7654321-0", outcome: "failed" },
    ],
  });
  await admin(url, "PUT", "/_admin/webhook", { url: o.webhookUrl });
  return { url };
}

/** One agent's seed in the Vault stand-in, and the token that may read it (and nothing else). */
export interface VaultSeed {
  /** The policy's name, e.g. "agent-evm". */
  policy: string;
  /** KV v2 path under mount "secret". */
  path: string;
  mnemonic: string;
  token: string;
}

/** The Vault stand-in holding the development seeds, and a read-only token per agent. */
export async function startVaultStandin(
  sup: Supervisor,
  o: { port: number; rootToken: string; seeds: VaultSeed[]; seedFile: string },
): Promise<{ url: string }> {
  const seed = {
    policies: Object.fromEntries(o.seeds.map((s) => [s.policy, { path: { [`secret/data/${s.path}`]: { capabilities: ["read"] } } }])),
    secrets: o.seeds.map((s) => ({ mount: "secret", path: s.path, data: { seed: s.mnemonic } })),
    tokens: o.seeds.map((s) => ({ id: s.token, policies: [s.policy], ttl: 0 })),
  };
  writeFileSync(o.seedFile, JSON.stringify(seed, null, 2), { mode: 0o600 });
  const child = sup.start({
    name: "vault-standin",
    cmd: process.execPath,
    args: [ENTRIES.vault],
    env: { ...process.env, PORT: String(o.port), HOST: "127.0.0.1", VAULT_DEV_ROOT_TOKEN: o.rootToken, VAULT_STANDIN_SEED_FILE: o.seedFile },
  });
  await child.waitFor((_l, r) => r?.msg === "Vault stand-in process ready", "that it is ready", 20_000);
  return { url: `http://127.0.0.1:${o.port}` };
}
