import { generateKeyPair, StarkbankStandinAdmin, type KeyHolder, type KeyPair, type TransferJson } from "@ponte/test/starkbank";
import { fileURLToPath } from "node:url";
import { startChild, type Child } from "../core/proc.js";
import type { Sql } from "./postgres.js";

// The PIX provider of the benchmarks: the Stark Bank stand-in of the test package (one of the
// two stand-ins the rules allow), run as its own process so it has an event loop to itself.
// Payouts are counted there, never inferred from Ponte's tables.

export const PROJECT_ID = "7070707070707070";
const STANDIN_MAIN = fileURLToPath(import.meta.resolve("@ponte/test/starkbank")).replace(/index\.js$/, "main.js");

export interface PixProvider {
  url: string;
  admin: StarkbankStandinAdmin;
  /** The project key Ponte (or the baseline) signs its requests with. */
  project: KeyPair;
  proc: Child;
  /** What the coordinator needs to pay through it. */
  coordinatorEnv: Record<string, string>;
  stop(): Promise<void>;
}

export async function startPixProvider(o: { name: string; logDir: string }): Promise<PixProvider> {
  const project = generateKeyPair();
  const proc = await startChild({
    name: o.name,
    args: [STANDIN_MAIN],
    logDir: o.logDir,
    ready: "Stark Bank stand-in listening",
    env: {
      PORT: "0",
      HOST: "127.0.0.1",
      STANDIN_PROJECT_ID: PROJECT_ID,
      STANDIN_PROJECT_PUBLIC_KEY: project.publicKeyPem,
      // The e2e tests' fast schedule: a transfer processes after 20 ms and settles 40 ms later.
      STANDIN_PROCESSING_DELAY_MS: "20",
      STANDIN_SETTLE_DELAY_MS: "40",
      STANDIN_WEBHOOK_RETRY_BASE_MS: "50",
      STANDIN_WEBHOOK_ATTEMPTS: "10",
    },
  });
  const line = await proc.waitFor("Stark Bank stand-in listening");
  const { port } = JSON.parse(line) as { port: number };
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    admin: new StarkbankStandinAdmin(url),
    project,
    proc,
    coordinatorEnv: {
      PIX_PROVIDER: "starkbank",
      STARKBANK_BASE_URL: url,
      STARKBANK_PROJECT_ID: PROJECT_ID,
      STARKBANK_PRIVATE_KEY: project.privateKeyPem,
      STARKBANK_TIMEOUT_MS: "5000",
      // Webhooks settle payouts; the status checks only back them up (production: 30 s first).
      PAYOUT_CHECK_SCHEDULE_MS: "2000,5000,10000",
      // The fixtures price every trade at 15,000 BRL per unit (100 USDT → R$ 1.5M): no caps here.
      PAYOUT_MAX_BRL: "100000000.00",
      PAYOUT_NIGHT_MAX_BRL: "100000000.00",
      PAYOUT_DAILY_MAX_BRL: "100000000.00",
      DAILY_LIMIT_BRL: "100000000.00",
    },
    stop: async () => void (await proc.kill("SIGTERM")),
  };
}

/** A valid CPF made from a number (deterministic). */
export function cpfOf(n: number): string {
  const d = String(100_000_000 + (n % 800_000_000)).slice(-9).split("").map(Number);
  const dv = (k: number) => {
    let sum = 0;
    for (let i = 0; i < k; i++) sum += d[i]! * (k + 1 - i);
    const r = (sum * 10) % 11;
    return r === 10 ? 0 : r;
  };
  d.push(dv(9));
  d.push(dv(10));
  const s = d.join("");
  return /^(\d)\1{10}$/.test(s) ? cpfOf(n + 1) : s;
}

/**
 * Every seller of the database's trades gets a registered e-mail PIX key at Ponte
 * (user_bank_data) and the same key in the stand-in's DICT, held by that seller.
 */
export async function seedSellers(sql: Sql, provider: PixProvider): Promise<void> {
  const users = (await sql<{ user_id: string }[]>`SELECT DISTINCT user_id FROM instant_trades ORDER BY user_id`).map((r) => r.user_id);
  const sellers = users.map((u, i) => ({ user: u, key: `${u}@example.com`, cpf: cpfOf(1000 + i * 7919), name: `Seller ${u.replace(/[^a-z0-9]/gi, " ")}` }));
  await sql`
    INSERT INTO user_bank_data (user_id, key_type, pix_key, holder_document, holder_name)
    SELECT u, 'email', k, c, n FROM unnest(${sellers.map((s) => s.user)}::text[], ${sellers.map((s) => s.key)}::text[],
                                           ${sellers.map((s) => s.cpf)}::text[], ${sellers.map((s) => s.name)}::text[]) AS x(u, k, c, n)
    ON CONFLICT (user_id) DO NOTHING`;
  const holders: KeyHolder[] = sellers.map((s, i) => ({
    key: s.key,
    type: "email",
    name: s.name,
    taxId: s.cpf,
    ispb: "18236120",
    branchCode: "0001",
    accountNumber: `${100000 + i}-${i % 10}`,
    accountType: "payment",
  }));
  for (let i = 0; i < holders.length; i += 200) await provider.admin.seedKeys(holders.slice(i, i + 200));
}

/** Transfers per tag (Ponte tags each transfer with its trade id, lower case). */
export function transfersByTag(transfers: TransferJson[]): Map<string, TransferJson[]> {
  const m = new Map<string, TransferJson[]>();
  for (const t of transfers) for (const tag of t.tags) m.set(tag, [...(m.get(tag) ?? []), t]);
  return m;
}
