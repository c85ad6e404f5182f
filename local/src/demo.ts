#!/usr/bin/env node
// npm run demo: sells crypto for BRL by PIX on the stack `npm start` runs, as its demo user, and
// shows each step: PIX key → quote → trade → deposit from a funded anvil wallet (or litecoind's
// demo wallet) → live status → the PIX receipt from the Stark Bank stand-in → the audit log.
import { randomUUID } from "node:crypto";
import { join, relative, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError, createApi, UnreachableError, type Api, type AuditLog, type Trade, type TransferRecord } from "./demo/api.js";
import { ChainUnavailableError, evmChain, litecoinChain, type AmountFormat, type DemoChain } from "./demo/chains.js";
import { parseArgs, UsageError } from "./options.js";
import { DEFAULT_STATE_DIR } from "./paths.js";
import { processAlive, readStackInfo, type StackInfo } from "./state/index.js";
import { style } from "./style.js";

const USAGE = `Usage: npm run demo [-- options]      (or: node local/dist/demo.js [options])

Sells crypto for BRL by PIX on the local Ponte that npm start runs, step by step.

Options:
  --asset USDT|ETH|LTC what to sell (USDT)
  --network <name>     where (anvil for USDT and ETH, litecoin-regtest for LTC)
  --amount <n>         how much (100 USDT, 0.01 ETH, 0.5 LTC)
  --fail-payout        pay to a PIX key whose bank rejects the transfer: the trade ends in
                       MANUAL_REVIEW (or REFUND_PENDING with PAYOUT_FAILURE_POLICY=refund)
  --url <gateway>      the gateway (default: the one in .ponte/stack.json)
  --state-dir <dir>    the state folder of npm start (PONTE_STATE_DIR; default .ponte/)
  --timeout <s>        give up after this many seconds (120)

Exit code 0 only when the sale completed (with --fail-payout: when it reached the failure state).
`;

const DEFAULT_AMOUNT: Record<string, string> = { USDT: "100", ETH: "0.01", LTC: "0.5" };
/** The local stack's network of each asset. */
const NETWORK_OF: Record<string, string> = { USDT: "anvil", ETH: "anvil", LTC: "litecoin-regtest" };
const FINAL_OK = new Set(["COMPLETED"]);
/** Where a failed payout leads: review, or (PAYOUT_FAILURE_POLICY=refund) the refund, maybe already done. */
const FAILURE_STATES = new Set(["MANUAL_REVIEW", "REFUND_PENDING", "REFUNDED"]);
const DEAD_ENDS = new Set(["EXPIRED", "CANCELLED", "UNDERPAID"]);

const say = (s = "") => process.stdout.write(`${s}\n`);
const ok = (s: string) => say(`${style.green("✔")} ${s}`);

/** Exit with a message for the person running the demo. */
class DemoError extends Error {}

interface DemoOptions {
  asset: string;
  network: string;
  amount: string;
  failPayout: boolean;
  url?: string;
  stateDir: string;
  timeoutMs: number;
}

function parseOptions(argv: string[]): DemoOptions | "help" {
  const a = parseArgs(argv, { flags: ["fail-payout", "help"], values: ["asset", "network", "amount", "url", "state-dir", "timeout"] });
  if (a.has("help")) return "help";
  const asset = String(a.get("asset") ?? "USDT").toUpperCase();
  if (!(asset in DEFAULT_AMOUNT)) throw new UsageError(`--asset must be USDT, ETH or LTC, not ${asset}`);
  const network = String(a.get("network") ?? NETWORK_OF[asset]);
  if (network !== NETWORK_OF[asset]) throw new UsageError(`--network: the local stack has ${asset} on ${NETWORK_OF[asset]} only, not ${network}`);
  const timeout = Number(a.get("timeout") ?? 120);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError("--timeout must be a number of seconds");
  const stateDir = a.get("state-dir") ?? process.env.PONTE_STATE_DIR;
  const url = a.get("url");
  return {
    asset,
    network,
    amount: String(a.get("amount") ?? DEFAULT_AMOUNT[asset]),
    failPayout: a.has("fail-payout"),
    ...(typeof url === "string" ? { url: url.replace(/\/+$/, "") } : {}),
    stateDir: typeof stateDir === "string" && stateDir !== "" ? resolve(stateDir) : DEFAULT_STATE_DIR,
    timeoutMs: timeout * 1000,
  };
}

/** The running stack, or a message saying how to get one. */
function findStack(o: DemoOptions): StackInfo {
  const path = join(o.stateDir, "stack.json");
  const info = readStackInfo(path);
  const shown = relative(process.cwd(), path) || path;
  if (!info) {
    throw new DemoError(
      `No local Ponte is running: ${shown} is missing. Start one with \`npm start\` in another terminal, wait for "Ponte is running", then run the demo again.`,
    );
  }
  if (!processAlive(info.pid)) {
    throw new DemoError(`The local Ponte that wrote ${shown} (npm start, pid ${info.pid}) is not running any more. Start it again with \`npm start\`.`);
  }
  return info;
}

const brl = (s: string) => `R$ ${s}`;
const short = (h: string) => `${h.slice(0, 10)}…${h.slice(-6)}`;
const clock = (iso: string) => new Date(iso).toISOString().slice(11, 23);

/** "0.5" with 8 decimals → 50000000n; more decimals than the asset has is an error, never rounded. */
function toBaseUnits(s: string, decimals: number): bigint {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m || (m[2] ?? "").length > decimals) throw new DemoError(`${s} is not an amount with at most ${decimals} decimals`);
  return BigInt(m[1]! + (m[2] ?? "").padEnd(decimals, "0"));
}

async function main(): Promise<number> {
  let o: DemoOptions;
  try {
    const parsed = parseOptions(process.argv.slice(2));
    if (parsed === "help") {
      say(USAGE);
      return 0;
    }
    o = parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${USAGE}`);
    return 2;
  }
  const stack = findStack(o);
  if (o.network === NETWORK_OF.LTC && !stack.litecoin) {
    const why = stack.agents.find((a) => a.network === o.network)?.reason ?? "litecoind is not running";
    throw new DemoError(`LTC is off in this local Ponte (${why}). Install litecoind (Debian: apt-get install -y litecoind), restart npm start, then run the demo again.`);
  }
  const gateway = o.url ?? stack.gatewayUrl;
  const api = createApi(gateway, stack.tokens.user);
  if (!(await api.ready())) throw new DemoError(`The gateway at ${gateway} answers but is not ready (its coordinator is down?). Look at npm start's terminal.`);

  say(style.bold(`Ponte demo: sell ${o.amount} ${o.asset} on ${o.network} for BRL by PIX`) + style.dim(`  (gateway ${gateway})`));
  const started = Date.now();

  // 1. The PIX key the payout goes to: the seller's own CPF, or (--fail-payout) an account whose bank rejects transfers.
  const user = stack.demoUser;
  const key = o.failPayout ? user.failingPixKey : user.pixKey;
  await api.putPixKey({ key_type: key.type, key: key.key, holder_document: user.document, holder_name: user.name });
  ok(`PIX key registered: ${key.type} ${key.key} (${user.name})${o.failPayout ? style.yellow("  ← its bank rejects every transfer") : ""}`);

  // 2. Quote.
  const { assets } = await api.assets();
  const asset = assets.find((a) => a.symbol === o.asset && a.network === o.network);
  if (!asset) throw new DemoError(`The gateway lists no ${o.asset} on ${o.network}.`);
  const quote = await api.quote({ symbol: o.asset, network: o.network, crypto_amount: o.amount });
  ok(
    `Quote ${quote.quote_id}: ${quote.crypto_amount} ${o.asset} → ${style.bold(brl(quote.fiat_amount))} ` +
      style.dim(`(price ${brl(quote.price)}, spread ${brl(quote.spread)}, network fee ${brl(quote.network_fee)}; valid until ${clock(quote.expires_at)} UTC)`),
  );

  // 3. Create the trade: refunds, if any, go back to the paying wallet.
  let chain: DemoChain;
  try {
    chain = o.network === NETWORK_OF.LTC ? await litecoinChain(stack, asset) : await evmChain(stack, asset);
  } catch (err) {
    if (err instanceof ChainUnavailableError) throw new DemoError(err.message);
    throw err;
  }
  try {
    const trade = await createTrade(api, { quote_id: quote.quote_id, refund_address: chain.refundAddress });
    ok(`Trade ${trade.id} created (${trade.status}); deposit address ${trade.deposit_address}`);

    // 4. Pay the deposit from the demo wallet.
    const paid = await chain.pay(trade.deposit_address, toBaseUnits(quote.crypto_amount, asset.decimals));
    ok(`Paid ${quote.crypto_amount} ${o.asset} from ${chain.payerLabel} in tx ${short(paid.txid)} (${paid.where})`);

    // 5. Follow the trade until it settles (or fails).
    const final = await follow(api, trade.id, { chain, needed: asset.confirmations, symbol: o.asset, o });
    const elapsed = ((Date.now() - started) / 1000).toFixed(1);
    const success = o.failPayout ? FAILURE_STATES.has(final.status) : FINAL_OK.has(final.status);

    // 6. The PIX receipt, as the bank (the stand-in) has it.
    await printReceipt(stack, final);
    // 7. The audit log, once the sweep (or refund) of the deposit has settled on chain
    //    (a UTXO sweep needs the network's confirmations too: 6 blocks on litecoin-regtest).
    const log = await settledAuditLog(api, trade.id, final.status, o.network === NETWORK_OF.LTC ? 60_000 : 30_000);
    let endStatus = final.status;
    if (final.status === "REFUND_PENDING") {
      endStatus = (await api.trade(trade.id)).status;
      if (endStatus === "REFUNDED") say(`${style.green("✔")} ${style.bold(endStatus)}: the deposit went back to ${chain.refundAddress}`);
    }
    printAuditLog(log, chain.format);
    say();
    if (success) {
      ok(
        o.failPayout
          ? style.bold(`The payout failed as asked and the trade went to ${endStatus} (${elapsed} s in all).`)
          : style.bold(`Sold ${quote.crypto_amount} ${o.asset} for ${brl(final.payout_amount ?? quote.fiat_amount)}, paid by PIX, in ${elapsed} s.`),
      );
      return 0;
    }
    const why = log.entries.at(-1)?.reason;
    say(`${style.red("✖")} The trade ended in ${final.status}${why ? ` (${why})` : ""}, not ${o.failPayout ? "MANUAL_REVIEW or REFUND_PENDING" : "COMPLETED"}.`);
    return 1;
  } finally {
    chain.close();
  }
}

async function createTrade(api: Api, body: { quote_id: string; refund_address: string }): Promise<Trade> {
  // One key for every attempt: a retry after a lost answer must not make a second trade.
  const idempotencyKey = `demo-${randomUUID()}`;
  const deadline = Date.now() + 30_000;
  let waited = false;
  for (;;) {
    try {
      return await api.create(body, idempotencyKey);
    } catch (err) {
      // The agent stocks deposit addresses just after it starts; give it a moment.
      if (!(err instanceof ApiError && err.code === "NO_DEPOSIT_ADDRESS") || Date.now() > deadline) throw err;
      if (!waited) say(style.dim("  waiting for the agent to stock deposit addresses…"));
      waited = true;
      await sleep(1_000);
    }
  }
}

async function follow(
  api: Api,
  id: string,
  x: { chain: DemoChain; needed: number; symbol: string; o: DemoOptions },
): Promise<Trade> {
  const t0 = Date.now();
  const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let tick = 0;
  let lastPlain = "";
  const done = (s: string) => FINAL_OK.has(s) || FAILURE_STATES.has(s) || DEAD_ENDS.has(s);
  for (;;) {
    const [t, confirmations] = await Promise.all([api.trade(id), x.chain.confirmations()]);
    // Confirmations counted like the agent: the deposit's block is the first.
    const seen = t.status !== "PENDING" ? confirmations : 0;
    const past = !["PENDING", "DEPOSIT_DETECTED"].includes(t.status);
    const conf = past ? x.needed : Math.min(seen, x.needed);
    const elapsed = ((Date.now() - t0) / 1000).toFixed(1);
    const payout = t.payout_status ? `  payout ${t.payout_status}` : "";
    const line = `${t.status.padEnd(17)} confirmations ${conf}/${x.needed}  received ${t.received_amount} / confirmed ${t.confirmed_amount} ${x.symbol}${payout}`;
    if (style.isTty) {
      process.stdout.write(`\r\x1b[2K  ${style.cyan(spinner[tick++ % spinner.length]!)} ${line}  ${style.dim(`${elapsed} s`)}`);
    } else if (line !== lastPlain) {
      say(`  ${line}  (${elapsed} s)`);
      lastPlain = line;
    }
    if (done(t.status)) {
      if (style.isTty) process.stdout.write("\r\x1b[2K");
      const good = x.o.failPayout ? FAILURE_STATES.has(t.status) : FINAL_OK.has(t.status);
      say(`${good ? style.green("✔") : style.red("✖")} ${style.bold(t.status)} after ${elapsed} s`);
      return t;
    }
    if (Date.now() - t0 > x.o.timeoutMs) {
      if (style.isTty) process.stdout.write("\n");
      throw new DemoError(`The trade is still ${t.status} after ${x.o.timeoutMs / 1000} s; giving up (npm start's terminal and .ponte/logs/ say why).`);
    }
    await sleep(500);
  }
}

interface StandinTransfer {
  id: string;
  amount: number;
  name: string;
  taxId: string;
  bankCode: string;
  branchCode: string;
  accountNumber: string;
  status: string;
  tags: string[];
  metadata: { authentication?: string };
  created: string;
}

async function printReceipt(stack: StackInfo, t: Trade): Promise<void> {
  const res = await fetch(`${stack.starkbank.url}/_admin/transfers`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new DemoError(`The Stark Bank stand-in answered ${res.status} for its transfers`);
  const { transfers } = (await res.json()) as { transfers: StandinTransfer[] };
  // The coordinator tags each transfer with its trade id (lower-cased, as Stark Bank stores tags).
  const mine = transfers.filter((x) => x.tags.includes(t.id.toLowerCase()));
  say();
  if (mine.length === 0) {
    say(style.bold("PIX receipt: ") + "no transfer reached the bank for this trade.");
    return;
  }
  for (const x of mine) {
    say(style.bold(`PIX receipt`) + style.dim(` (Stark Bank stand-in, transfer ${x.id})`));
    const row = (k: string, v: string) => say(`  ${k.padEnd(15)}${v}`);
    row("status", x.status === "success" ? style.green(x.status) : style.red(x.status));
    row("end-to-end id", x.metadata.authentication ?? "—");
    row("amount", style.bold(brl(`${Math.floor(x.amount / 100)}.${String(x.amount % 100).padStart(2, "0")}`)));
    row("to", `${x.name}, ${x.taxId}, bank ${x.bankCode} branch ${x.branchCode} account ${x.accountNumber}`);
    row("at", x.created);
  }
  if (mine.length > 1) say(style.yellow(`  ${mine.length} transfers for one trade!`));
}

const TRANSFER_FINAL = new Set(["CONFIRMED", "FAILED", "SKIPPED"]);

/**
 * The audit log, after waiting (briefly) for the deposit's sweep to the hot wallet: ordered once
 * the trade completes, final a few blocks later. Gateways that list no transfers are not waited for.
 */
async function settledAuditLog(api: Api, id: string, status: string, waitMs: number): Promise<AuditLog> {
  const deadline = Date.now() + waitMs;
  const t0 = Date.now();
  for (;;) {
    const log = await api.auditLog(id);
    const transfers = log.transfers;
    if (transfers === undefined) return log;
    const pending = transfers.filter((t) => !TRANSFER_FINAL.has(t.status));
    const expected =
      (status === "COMPLETED" && !transfers.some((t) => t.kind === "SWEEP")) ||
      (status === "REFUND_PENDING" && !transfers.some((t) => t.kind === "REFUND"));
    if ((pending.length === 0 && !expected) || Date.now() > deadline) {
      if (style.isTty) process.stdout.write("\r\x1b[2K");
      return log;
    }
    const what = pending.length > 0 ? pending.map((t) => `${t.kind} ${t.status}`).join(", ") : "waiting for the order";
    const doing = status === "REFUND_PENDING" ? "refunding the deposit" : "sweeping the deposit to the hot wallet";
    if (style.isTty) process.stdout.write(`\r\x1b[2K  ${style.dim(`${doing}: ${what}  ${((Date.now() - t0) / 1000).toFixed(1)} s`)}`);
    await sleep(500);
  }
}

/** A gas top-up moves ether whatever token its sweep is for; the agent sizes it, so its record may say 0. */
const moved = (t: TransferRecord, amount: AmountFormat): string =>
  t.kind === "GAS_TOPUP" ? (t.amount_base_units === "0" ? "ether for gas" : amount(t.amount_base_units, null)) : amount(t.amount_base_units, t.contract);

function printTransfers(transfers: TransferRecord[], amount: AmountFormat): void {
  say();
  say(style.bold("Transfers of the deposit") + style.dim(" (sweeps, gas top-ups, refunds)"));
  if (transfers.length === 0) say("  none");
  for (const t of transfers) {
    const word = t.status.padEnd(9);
    const state = t.status === "CONFIRMED" ? style.green(word) : TRANSFER_FINAL.has(t.status) ? style.red(word) : style.yellow(word);
    say(
      `  ${t.kind.padEnd(10)} ${state} ${short(t.from_address)} → ${short(t.to_address)}  ${moved(t, amount)}` +
        `${t.fee_base_units ? style.dim(`  fee ${amount(t.fee_base_units, null)}`) : ""}` +
        `${t.tx_hash ? `  tx ${short(t.tx_hash)}` : ""}${t.reason ? style.dim(`  ${t.reason}`) : ""}`,
    );
  }
}

function printAuditLog(log: AuditLog, amount: AmountFormat): void {
  say();
  say(style.bold("Audit log"));
  for (const e of log.entries) {
    const data = Object.entries(e.data)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    say(
      `  ${clock(e.created_at)}  ${(e.from_status ?? "—").padEnd(17)} → ${e.to_status.padEnd(17)} ${style.dim(e.actor)}` +
        `${e.reason ? `  ${e.reason}` : ""}${data ? style.dim(`  ${data}`) : ""}`,
    );
  }
  if (log.transfers !== undefined) printTransfers(log.transfers, amount);
}

try {
  process.exitCode = await main();
} catch (err) {
  if (style.isTty) process.stdout.write("\n");
  if (err instanceof DemoError) {
    process.stderr.write(`${style.red("✖")} ${err.message}\n`);
  } else if (err instanceof UnreachableError) {
    process.stderr.write(
      `${style.red("✖")} The local Ponte is not up: the gateway at ${err.url} does not answer (${err.why}). ` +
        "Start it with `npm start` in another terminal, wait for \"Ponte is running\", then run the demo again.\n",
    );
  } else if (err instanceof ApiError) {
    process.stderr.write(`${style.red("✖")} The API refused: ${err.message}\n`);
  } else {
    process.stderr.write(`${style.red("✖")} ${(err as Error)?.stack ?? String(err)}\n`);
  }
  process.exitCode = 1;
}
