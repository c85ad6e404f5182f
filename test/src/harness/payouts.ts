// Payout scenarios end to end: a real stack (coordinator + gateway) paying through the Stark Bank
// stand-in, and helpers to bring trades to PAYMENT_CONFIRMED without a chain. Payouts are counted
// at the stand-in, never inferred from Ponte's own tables.
import { randomInt } from "node:crypto";
import { eventually, startProcess, type RunningProcess } from "@ponte/common/testing";
import { expect } from "vitest";
import { fileURLToPath } from "node:url";
import {
  generateKeyPair,
  spawnStarkbankStandin,
  startStarkbankStandin,
  type KeyHolder,
  type KeyPair,
  type StarkbankStandinAdmin,
  type TransferSummary,
} from "../standins/starkbank/index.js";
import { evmAddresses, startStack, type Stack } from "./stack.js";

export const PROJECT_ID = "7070707070707070";
const REFUND = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";

/** The stand-in as the tests use it, in-process or as a child process. */
export interface Standin {
  url: string;
  admin: StarkbankStandinAdmin;
  close(): Promise<void>;
}

async function spawnStandin(project: KeyPair, settings: Record<string, number>): Promise<Standin> {
  const child = await spawnStarkbankStandin({
    STANDIN_PROJECT_ID: PROJECT_ID,
    STANDIN_PROJECT_PUBLIC_KEY: project.publicKeyPem,
    STANDIN_PROCESSING_DELAY_MS: String(settings.processingDelayMs),
    STANDIN_SETTLE_DELAY_MS: String(settings.settleDelayMs),
    STANDIN_WEBHOOK_RETRY_BASE_MS: String(settings.webhookRetryBaseMs),
    STANDIN_WEBHOOK_ATTEMPTS: String(settings.webhookAttempts),
  });
  return { url: child.url, admin: child.admin, close: child.stop };
}

export interface PayoutRig {
  s: Stack;
  standin: Standin;
  /** Ponte's Stark Bank project key (to call the stand-in as someone else using the account would). */
  project: KeyPair;
  stop(): Promise<void>;
}

/**
 * A stack with PIX_PROVIDER=starkbank pointed at a fresh in-process stand-in, its webhooks sent
 * to the gateway. Fast schedules, and no night cap unless a test sets one.
 */
export async function startPayoutRig(
  opts: {
    env?: Record<string, string>;
    addresses?: number;
    /** Run the stand-in as its own process (load tests: it then has an event loop to itself). */
    separateStandin?: boolean;
  } = {},
): Promise<PayoutRig> {
  const project = generateKeyPair();
  const settings = { processingDelayMs: 20, settleDelayMs: 40, webhookRetryBaseMs: 50, webhookAttempts: 10 };
  const standin: Standin = opts.separateStandin
    ? await spawnStandin(project, settings)
    : await startStarkbankStandin({ projects: [{ id: PROJECT_ID, publicKeyPem: project.publicKeyPem }], ...settings });
  let s: Stack;
  try {
    s = await startStack({
      env: {
        PIX_PROVIDER: "starkbank",
        STARKBANK_BASE_URL: standin.url,
        STARKBANK_PROJECT_ID: PROJECT_ID,
        STARKBANK_PRIVATE_KEY: project.privateKeyPem,
        // Generous: a loaded test machine can be slow to answer; the timeout tests set their own.
        STARKBANK_TIMEOUT_MS: "5000",
        PAYOUT_CHECK_SCHEDULE_MS: "200,400,800",
        PAYOUT_INTERVAL_MS: "200",
        PAYOUT_NIGHT_MAX_BRL: "100000000.00",
        PAYOUT_DAILY_MAX_BRL: "100000000.00",
        DAILY_LIMIT_BRL: "100000000.00",
        ...opts.env,
      },
    });
  } catch (err) {
    await standin.close();
    throw err;
  }
  try {
    await standin.admin.setWebhookUrl(`${s.gatewayUrl}/api/v1/webhooks/pix/starkbank`);
    await stockAddresses(s, opts.addresses ?? 20);
  } catch (err) {
    await standin.close();
    await s.stop();
    throw err;
  }
  return {
    s,
    standin,
    project,
    async stop() {
      await standin.close();
      await s.stop();
    },
  };
}

/**
 * Deposit addresses for trades, written straight to the pool: payouts never look at the chain,
 * so these tests do not depend on the agent protocol.
 */
async function stockAddresses(s: Stack, n: number): Promise<void> {
  const [top] = await s.sql<{ next: string }[]>`
    SELECT (COALESCE(max(derivation_index), -1) + 1)::text AS next FROM deposit_addresses WHERE network = 'anvil'`;
  const start = Number(top!.next);
  const rows = evmAddresses(n).map((address, i) => ({
    network: "anvil",
    address,
    derivation_index: start + i,
    derivation_path: `m/44'/60'/0'/0/${start + i}`,
  }));
  await s.sql`INSERT INTO deposit_addresses ${s.sql(rows)}`;
}

/** A valid CPF, random. */
export function randomCpf(): string {
  const d = Array.from({ length: 9 }, () => randomInt(10));
  const dv = (n: number) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += d[i]! * (n + 1 - i);
    const r = (sum * 10) % 11;
    return r === 10 ? 0 : r;
  };
  d.push(dv(9));
  d.push(dv(10));
  const s = d.join("");
  return /^(\d)\1{10}$/.test(s) ? randomCpf() : s;
}

export interface Seller {
  userId: string;
  cpf: string;
  name: string;
  pixKey: string;
  token: string;
}

let sellerSeq = 0;

/**
 * A seller with an e-mail PIX key. `dict`: how the stand-in's DICT knows the key — "self" (held by
 * the seller), "other" (held by someone else's CPF), "failing" (transfers to it fail), "none"
 * (not registered at any bank). `register: false` leaves the seller without a PIX key at Ponte.
 */
export async function newSeller(
  rig: PayoutRig,
  opts: { dict?: "self" | "other" | "failing" | "none"; register?: boolean; prefix?: string } = {},
): Promise<Seller> {
  const n = sellerSeq++;
  const tag = `${opts.prefix ?? "s"}${n}-${process.pid}-${Date.now().toString(36)}`;
  const seller: Seller = {
    userId: `u-${tag}`,
    cpf: randomCpf(),
    name: `Seller ${tag.replace(/[^a-z0-9]/gi, " ")}`,
    pixKey: `${tag.toLowerCase()}@example.com`,
    token: "",
  };
  seller.token = rig.s.token(seller.userId, { document: seller.cpf });
  const dict = opts.dict ?? "self";
  if (dict !== "none") {
    const holder: KeyHolder = {
      key: seller.pixKey,
      type: "email",
      name: dict === "other" ? "Someone Else" : seller.name,
      taxId: dict === "other" ? randomCpf() : seller.cpf,
      ispb: "18236120",
      branchCode: "0001",
      accountNumber: `${randomInt(100000, 999999)}-${randomInt(10)}`,
      accountType: "payment",
      ...(dict === "failing" ? { outcome: "failed" as const } : {}),
    };
    await rig.standin.admin.seedKeys([holder]);
  }
  if (opts.register !== false) {
    const r = await rig.s.api("/api/v1/users/me/pix-key", {
      method: "PUT",
      token: seller.token,
      body: { key_type: "email", key: seller.pixKey, holder_document: seller.cpf, holder_name: seller.name },
    });
    if (r.status !== 200) throw new Error(`PUT pix-key: ${r.status} ${JSON.stringify(r.body)}`);
  }
  return seller;
}

/** A PENDING trade through the API (quote + create). */
export async function createTrade(rig: PayoutRig, seller: Seller, cryptoAmount = "10"): Promise<string> {
  const q = await rig.s.api("/api/v1/instant-trade/quote", {
    token: seller.token,
    body: { symbol: "USDT", network: "anvil", crypto_amount: cryptoAmount },
  });
  if (q.status !== 200) throw new Error(`quote: ${q.status} ${JSON.stringify(q.body)}`);
  const c = await rig.s.api("/api/v1/instant-trade/create", {
    token: seller.token,
    body: { quote_id: q.body.quote_id, refund_address: REFUND },
    headers: { "idempotency-key": `k-${q.body.quote_id}` },
  });
  if (c.status !== 201) throw new Error(`create: ${c.status} ${JSON.stringify(c.body)}`);
  return c.body.id as string;
}

/**
 * The deposit as if an agent had seen it in full (no chain here), then the admin confirms it: a
 * real DEPOSIT_DETECTED → PAYMENT_CONFIRMED transition through the gateway and the coordinator.
 */
export async function confirmTrade(rig: PayoutRig, tradeId: string): Promise<void> {
  await rig.s.sql`UPDATE instant_trades SET status = 'DEPOSIT_DETECTED', received_amount = crypto_amount, confirmed_amount = crypto_amount
                   WHERE id = ${tradeId} AND status = 'PENDING'`;
  const r = await rig.s.api(`/api/v1/instant-trade/${tradeId}/confirm-payment`, {
    token: rig.s.adminToken(),
    body: { reason: "deposit verified on the explorer (test)" },
  });
  if (r.status !== 200) throw new Error(`confirm-payment: ${r.status} ${JSON.stringify(r.body)}`);
}

/** A seller's trade, created and confirmed. */
export async function confirmedTrade(rig: PayoutRig, seller: Seller, cryptoAmount = "10"): Promise<string> {
  const id = await createTrade(rig, seller, cryptoAmount);
  await confirmTrade(rig, id);
  return id;
}

export async function tradeStatus(rig: PayoutRig, tradeId: string): Promise<string> {
  const [r] = await rig.s.sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${tradeId}`;
  return r!.status;
}

/** Every transfer at the stand-in, grouped by a tag carrying the trade id (set by the adapter). */
export const transfersForTrade = (summary: TransferSummary, tradeId: string) =>
  summary.transfers.filter((t) => t.tags.includes(tradeId.toLowerCase()));

/** The coordinator's /metrics, scraped at the port it logged on start. */
export async function coordinatorMetrics(proc: RunningProcess): Promise<string> {
  const line = [...proc.lines].reverse().find((l) => l.includes("Coordinator ready"));
  if (!line) throw new Error("the coordinator has not logged its metrics port");
  const port = (JSON.parse(line) as { metrics_port: number }).metrics_port;
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

/** The sum of a counter's samples (optionally those whose labels contain `labels`). */
export function counterValue(metricsText: string, name: string, labels = ""): number {
  let total = 0;
  for (const line of metricsText.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labels && !(m[2] ?? "").includes(labels)) continue;
    total += Number(m[3]);
  }
  return total;
}

const coordinatorEntry = fileURLToPath(import.meta.resolve("@ponte/coordinator")).replace(/index\.js$/, "main.js");

/** Another coordinator process on the same database (a second replica), on its own ports. */
export function startReplica(rig: PayoutRig, grpcPort: number): Promise<RunningProcess> {
  return startProcess({
    name: "coordinator-2",
    entry: coordinatorEntry,
    env: { ...rig.s.coordinatorEnv, GRPC_PORT: String(grpcPort), METRICS_PORT: "0" },
    readyLog: "Coordinator ready",
  });
}

/**
 * Waits for every trade to be COMPLETED, then checks at the stand-in that each was paid exactly
 * once (one transfer under its tag, succeeded, for the amount of its payout row).
 */
export async function expectPaidOnce(rig: PayoutRig, tradeIds: string[], timeout = 10_000): Promise<TransferSummary> {
  await eventually(async () => {
    const rows = await rig.s.sql<{ id: string; status: string }[]>`SELECT id, status FROM instant_trades WHERE id IN ${rig.s.sql(tradeIds)}`;
    const notDone = rows.filter((r) => r.status !== "COMPLETED");
    expect(notDone).toEqual([]);
  }, { timeout });
  const summary = await rig.standin.admin.transfers();
  const payouts = await rig.s.sql<{ trade_id: string; idempotency_key: string; amount_centavos: bigint; status: string }[]>`
    SELECT trade_id, idempotency_key, amount_centavos, status FROM payouts WHERE trade_id IN ${rig.s.sql(tradeIds)}`;
  const byTrade = new Map(payouts.map((p) => [p.trade_id, p]));
  const problems: unknown[] = [];
  for (const id of tradeIds) {
    const made = transfersForTrade(summary, id);
    const p = byTrade.get(id);
    const got = { transfers: made.length, status: made[0]?.status, amount: made[0]?.amount, externalId: made[0]?.externalId, payout: p?.status };
    const want = { transfers: 1, status: "success", amount: Number(p?.amount_centavos), externalId: p?.idempotency_key, payout: "SETTLED" };
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push({ id, got, want });
  }
  expect(problems).toEqual([]);
  return summary;
}

/**
 * Restarts the coordinator with env changes (undefined deletes a variable) and waits until the
 * gateway reaches it again.
 */
export async function restartCoordinator(
  rig: PayoutRig,
  changes: Record<string, string | undefined> = {},
  signal: NodeJS.Signals = "SIGKILL",
): Promise<void> {
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete rig.s.coordinatorEnv[k];
    else rig.s.coordinatorEnv[k] = v;
  }
  await rig.s.restartCoordinator(signal);
  await eventually(async () => expect((await rig.s.api("/readyz")).status).toBe(200), { timeout: 15_000 });
}
