// The UTXO transfer executor: PSBTs built from the order's inputs (a sweep spends the deposits
// it names; the hot wallet's coins are selected largest-first), signed with BIP84 keys, recorded
// with the coordinator (SIGNED: txid and raw bytes) before broadcast. Every attempt of an order
// spends the same inputs, so at most one can ever land: a restarted agent re-broadcasts the
// recorded bytes, a stuck one is replaced (BIP125) with a higher fee.
import type { AgentMetrics, TransferAttempt, TransferExecutor, TransferOrder, TransferRunContext, TransferStatus } from "@ponte/agent-runtime";
import { childLogger, crashPoint, delay, PonteError, type Logger } from "@ponte/common";
import { Psbt, Transaction } from "bitcoinjs-lib";
import { isAddressOf, type UtxoConfig } from "../config/index.js";
import { outputScript } from "../derive/index.js";
import type { UtxoMetrics } from "../agent/metrics.js";
import type { SignerKey, UtxoKeys } from "../keys/index.js";
import { coinsToSats, RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RpcError, RpcUnavailableError, type UtxoRpc } from "../rpc/index.js";
import type { RpcTx, RpcTxOut } from "../rpc/types.js";
import { estimateVsize, feeRate, replacementRate } from "./fees.js";

export * from "./fees.js";

/** nSequence that signals BIP125 replaceability. */
const RBF_SEQUENCE = 0xfffffffd;

export interface Coin {
  txid: string;
  vout: number;
  value: bigint;
  script: string;
}

interface LiveAttempt {
  attempt: number;
  txid: string;
  rawTx: string;
  fee: bigint;
  satVb: bigint;
  tx: Transaction;
  status: "SIGNED" | "BROADCAST";
  sentAt: bigint | null;
  lastRefusal?: string;
}

interface OrderState {
  key: SignerKey;
  attempts: LiveAttempt[];
  /** The inputs every attempt spends (known once planned, or read back for a replacement). */
  coins: Coin[] | null;
  lastWarning?: string;
  missing?: number;
}

type Plan =
  | { kind: "send"; coins: Coin[]; outputs: { address: string; value: bigint }[]; fee: bigint; satVb: bigint }
  | { kind: "end"; status: "CONFIRMED" | "FAILED" | "SKIPPED"; reason: string };

const end = (status: "CONFIRMED" | "FAILED" | "SKIPPED", reason: string): Plan => ({ kind: "end", status, reason });
const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);
const outpoint = (c: { txid: string; vout: number }) => `${c.txid}:${c.vout}`;

export interface UtxoTransferExecutor extends TransferExecutor {
  readonly active: number;
}

export function createUtxoTransferExecutor(
  common: { logger: Logger },
  deps: { config: UtxoConfig; rpc: UtxoRpc; keys: UtxoKeys; metrics?: AgentMetrics; utxoMetrics?: UtxoMetrics },
): UtxoTransferExecutor {
  const { config, rpc, keys } = deps;
  const logger = childLogger(common.logger, { network: config.network, component: "transfers" });
  const states = new Map<string, OrderState>();
  /** Hot-wallet coins spent by a transaction this executor signed (not yet confirmed). */
  const reserved = new Set<string>();
  let hotLock: Promise<unknown> = Promise.resolve();
  const withHotLock = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = hotLock.then(fn, fn);
    hotLock = run.catch(() => undefined);
    return run;
  };

  const wire = (a: LiveAttempt, status: TransferStatus): TransferAttempt => ({ attempt: a.attempt, txHash: a.txid, rawTx: a.rawTx, nonce: null, fee: a.fee, status });
  const noTx = (status: TransferStatus): TransferAttempt => ({ attempt: 0, txHash: "", rawTx: "", nonce: null, fee: 0n, status });
  const height = () => rpc.call<number>("getblockcount").then(BigInt);

  /** Unspent outputs of address (confirmed), from the node's UTXO set. */
  async function coinsOf(address: string): Promise<Coin[]> {
    type Scan = { success: boolean; unspents: { txid: string; vout: number; scriptPubKey: string; amount: string }[] };
    let r: Scan;
    try {
      r = await rpc.call<Scan>("scantxoutset", ["start", [`addr(${address})`]]);
    } catch (err) {
      // One scan at a time per node (-8 "Scan already in progress", e.g. the balance gauge's): wait.
      if (err instanceof RpcError && err.code === RPC_INVALID_PARAMETER) throw new RpcUnavailableError(`scantxoutset: ${err.message}`, "scan_in_progress", { cause: err });
      throw err;
    }
    return r.unspents.map((u) => ({ txid: u.txid, vout: u.vout, value: coinsToSats(u.amount), script: u.scriptPubKey }));
  }

  /** The order's own deposits, each checked unspent and paying the key's script. */
  async function sourceCoins(order: TransferOrder, key: SignerKey): Promise<Coin[] | string> {
    if (order.sourceTxRefs.length === 0) return coinsOf(key.address);
    const refs = order.sourceTxRefs.map((r) => {
      const [txid, vout] = r.split(":");
      return { txid: txid!, vout: Number(vout) };
    });
    const outs = await rpc.batchOrThrow<RpcTxOut | null>(refs.map((r) => ({ method: "gettxout", params: [r.txid, r.vout, true] })));
    const coins: Coin[] = [];
    for (let i = 0; i < refs.length; i++) {
      const o = outs[i];
      if (!o) return `source ${outpoint(refs[i]!)} is spent or unknown`;
      if (o.scriptPubKey.hex !== key.script) return `source ${outpoint(refs[i]!)} does not pay ${key.address}`;
      coins.push({ ...refs[i]!, value: coinsToSats(o.value), script: o.scriptPubKey.hex });
    }
    return coins;
  }

  async function plan(order: TransferOrder, key: SignerKey): Promise<Plan> {
    if (order.contract !== null) return end("FAILED", `a UTXO network has no token ${order.contract}`);
    if (order.kind === "GAS_TOPUP") return end("FAILED", "a UTXO network needs no gas top-up");
    if (!isAddressOf(order.toAddress, config.chain)) return end("FAILED", `to_address ${order.toAddress} is not a ${config.chain.name} address`);
    switch (order.kind) {
      case "SWEEP":
      case "CUSTODIAL_SELL":
        if (order.toAddress !== keys.hot.address) return end("FAILED", `a ${order.kind} goes to the hot wallet ${keys.hot.address}, not ${order.toAddress}`);
        if (key.role !== "deposit") return end("FAILED", `a ${order.kind} comes from a derived user address, not the hot wallet`);
        break;
      case "REBALANCE":
        if (key.role !== "hot") return end("FAILED", "a REBALANCE comes from the hot wallet");
        if (config.coldWallet === null) return end("FAILED", "no cold_wallet is configured for this network");
        if (order.toAddress !== config.coldWallet) return end("FAILED", `a REBALANCE goes to the cold wallet ${config.coldWallet}, not ${order.toAddress}`);
        break;
      case "REFUND":
        break;
    }
    const rate = await feeRate(rpc, config.fees);
    deps.utxoMetrics?.setFeeRate("estimate", rate.satVb);
    const toLen = outputScript(order.toAddress, config.chain).length;
    const changeLen = keys.hot.script.length / 2;

    let coins: Coin[];
    if (key.role === "deposit") {
      const c = await sourceCoins(order, key);
      if (typeof c === "string") return end("FAILED", c);
      if (c.length === 0) return end("FAILED", `${key.address} holds no coins`);
      coins = c;
    } else {
      // Largest first, until amount (+ the fee when not deducted) is covered.
      const all = (await coinsOf(key.address)).filter((c) => !reserved.has(outpoint(c))).sort((a, b) => (a.value < b.value ? 1 : a.value > b.value ? -1 : 0));
      coins = [];
      for (const c of all) {
        coins.push(c);
        const fee = estimateVsize(coins.length, [toLen, changeLen]) * rate.satVb;
        if (sum(coins.map((x) => x.value)) >= order.amount + (order.deductFee ? 0n : fee)) break;
      }
    }
    return outputsFor(order, coins, rate.satVb, toLen, changeLen);
  }

  /** Outputs (payment, change to the hot wallet) and fee for coins at satVb. */
  function outputsFor(order: TransferOrder, coins: Coin[], satVb: bigint, toLen: number, changeLen: number): Plan {
    const total = sum(coins.map((c) => c.value));
    const toHot = order.toAddress === keys.hot.address;
    // Everything from a deposit address to the hot wallet is one output; otherwise change may follow.
    let fee = estimateVsize(coins.length, toHot ? [toLen] : [toLen, changeLen]) * satVb;
    let send = order.deductFee ? order.amount - fee : order.amount;
    let change = total - send - fee;
    if (toHot) {
      send = total - fee;
      change = 0n;
    } else if (change < config.dustLimit) {
      // No change output: what is left goes to the fee (or is not there at all).
      fee = estimateVsize(coins.length, [toLen]) * satVb;
      if (order.deductFee) send = order.amount - fee;
      change = total - send - fee;
      if (change >= 0n) {
        fee += change;
        change = 0n;
      }
    }
    if (change < 0n) return end("FAILED", `${order.fromAddress} holds ${total}, less than the ${send} to send plus the fee ${fee}`);
    if (send < config.dustLimit) {
      return end(order.kind === "SWEEP" ? "SKIPPED" : "FAILED", `what is left after the fee (${fee} sat at ${satVb} sat/vB) is ${send}, below the dust limit ${config.dustLimit}`);
    }
    if (order.kind === "SWEEP" && order.maxFee !== null && fee > order.maxFee) {
      return end("SKIPPED", `the fee (${fee} sat at ${satVb} sat/vB) exceeds max_fee (${order.maxFee} sat)`);
    }
    const outputs = [{ address: order.toAddress, value: send }];
    if (change > 0n) outputs.push({ address: keys.hot.address, value: change });
    return { kind: "send", coins, outputs, fee, satVb };
  }

  async function sign(st: OrderState, p: Extract<Plan, { kind: "send" }>): Promise<Transaction> {
    const psbt = new Psbt({ network: config.chain.network });
    psbt.setMaximumFeeRate(Number(config.fees.maxSatVb) + 1);
    for (const c of p.coins) {
      psbt.addInput({ hash: c.txid, index: c.vout, sequence: RBF_SEQUENCE, witnessUtxo: { script: Buffer.from(c.script, "hex"), value: c.value } });
    }
    for (const o of p.outputs) psbt.addOutput({ address: o.address, value: o.value });
    await keys.sign(psbt, p.coins.map(() => st.key));
    return psbt.extractTransaction();
  }

  /** Broadcasts; false when the node refused it (it stays recorded and is sent again later). */
  async function broadcast(a: LiveAttempt, log: Logger): Promise<boolean> {
    try {
      await rpc.call("sendrawtransaction", [a.rawTx]);
      return true;
    } catch (err) {
      if (!(err instanceof RpcError)) throw err;
      // Already in the mempool or a block ("already known", -27): it is out there.
      if ((await lookup(a.txid)) !== null) return true;
      if (a.lastRefusal !== err.message) log.warn({ tx_hash: a.txid, attempt: a.attempt, node_error: err.message, code: err.code }, "The node refused the transaction; it stays recorded and is sent again");
      a.lastRefusal = err.message;
      return false;
    }
  }

  /** Where a transaction is: confirmations (0 in the mempool), or null when the node has it nowhere. */
  async function lookup(txid: string): Promise<{ confirmations: number } | null> {
    try {
      const t = await rpc.call<RpcTx>("getrawtransaction", [txid, true]);
      return { confirmations: t.confirmations ?? 0 };
    } catch (err) {
      if (!(err instanceof RpcError && err.code === RPC_INVALID_ADDRESS_OR_KEY)) throw err;
    }
    // Without -txindex a mined transaction is found through its first output, while unspent.
    const out = await rpc.call<RpcTxOut | null>("gettxout", [txid, 0, false]);
    return out ? { confirmations: out.confirmations } : null;
  }

  async function signRecordBroadcast(order: TransferOrder, st: OrderState, ctx: TransferRunContext, attemptNo: number, p: Extract<Plan, { kind: "send" }>, log: Logger) {
    const tx = await sign(st, p);
    const a: LiveAttempt = { attempt: attemptNo, txid: tx.getId(), rawTx: tx.toHex(), fee: p.fee, satVb: p.satVb, tx, status: "SIGNED", sentAt: null };
    // Recorded before broadcast: if this report is refused, the transaction is dropped unsent.
    await ctx.report({ orderId: order.orderId, attempt: wire(a, "SIGNED") });
    st.attempts.push(a);
    st.coins = p.coins;
    if (st.key.role === "hot") for (const c of p.coins) reserved.add(outpoint(c));
    deps.utxoMetrics?.setFeeRate("signed", p.satVb);
    log.info({ attempt: a.attempt, tx_hash: a.txid, inputs: p.coins.length, fee: p.fee.toString(), sat_per_vbyte: p.satVb.toString(), vsize: tx.virtualSize() }, "Transfer signed and recorded");
    crashPoint("transfer.after_sign");
    const sent = await broadcast(a, log);
    if (sent) crashPoint("transfer.after_broadcast");
    return { attempt: a, sent };
  }

  async function markBroadcast(order: TransferOrder, a: LiveAttempt, ctx: TransferRunContext, at: bigint) {
    a.sentAt ??= at;
    if (a.status === "BROADCAST") return;
    await ctx.report({ orderId: order.orderId, attempt: wire(a, "BROADCAST") });
    a.status = "BROADCAST";
  }

  /** The inputs of a recorded attempt with their values (for a replacement after a restart). */
  async function coinsOfTx(tx: Transaction): Promise<Coin[]> {
    const ins = tx.ins.map((i) => ({ txid: Buffer.from(i.hash).reverse().toString("hex"), vout: i.index }));
    const parents = await rpc.batchOrThrow<RpcTx>(ins.map((i) => ({ method: "getrawtransaction", params: [i.txid, true] })));
    return ins.map((i, k) => {
      const v = parents[k]!.vout.find((o) => o.n === i.vout)!;
      return { ...i, value: coinsToSats(v.value), script: v.scriptPubKey.hex };
    });
  }

  async function replace(order: TransferOrder, st: OrderState, ctx: TransferRunContext, h: bigint, log: Logger) {
    const prev = st.attempts.at(-1)!;
    const warnOnce = (reason: string) => {
      if (st.lastWarning !== reason) log.warn({ tx_hash: prev.txid, reason }, "Stuck transfer not replaced");
      st.lastWarning = reason;
    };
    const est = await feeRate(rpc, config.fees);
    const rate = replacementRate(prev.satVb, est.satVb, config.fees.maxSatVb);
    if (rate === null) return warnOnce("the fee bump would exceed fees.max_sat_vb");
    st.coins ??= await coinsOfTx(prev.tx);
    const p = outputsFor(order, st.coins, rate, outputScript(order.toAddress, config.chain).length, keys.hot.script.length / 2);
    if (p.kind === "end") return warnOnce(p.reason);
    if (p.fee <= prev.fee) return warnOnce("the bumped fee is not above the current one");
    const out = await signRecordBroadcast(order, st, ctx, prev.attempt + 1, p, log);
    st.lastWarning = undefined;
    deps.metrics?.transferReplaced();
    log.warn({ replaced_tx_hash: prev.txid, tx_hash: out.attempt.txid, attempt: out.attempt.attempt, sat_per_vbyte: rate.toString(), blocks_waited: prev.sentAt === null ? undefined : (h - prev.sentAt).toString() }, "Stuck transfer replaced with a fee bump (RBF)");
    if (out.sent) await markBroadcast(order, out.attempt, ctx, h);
  }

  async function follow(order: TransferOrder, st: OrderState, ctx: TransferRunContext, log: Logger) {
    const conf = config.confirmations;
    while (!ctx.signal.aborted) {
      const h = await height();
      let found: { a: LiveAttempt; confirmations: number } | null = null;
      for (const a of [...st.attempts].reverse()) {
        const l = await lookup(a.txid);
        if (l) {
          found = { a, confirmations: l.confirmations };
          break;
        }
      }
      if (found) {
        st.missing = 0;
        await markBroadcast(order, found.a, ctx, h);
        if (found.confirmations >= conf) {
          const at = h - BigInt(found.confirmations) + 1n;
          await ctx.report({ orderId: order.orderId, attempt: wire(found.a, "CONFIRMED"), blockHeight: at });
          log.info({ status: "CONFIRMED", tx_hash: found.a.txid, attempt: found.a.attempt, block_number: at.toString(), fee: found.a.fee.toString() }, "Transfer confirmed");
          if (st.key.role === "hot") for (const c of st.coins ?? []) reserved.delete(outpoint(c));
          states.delete(order.orderId);
          return;
        }
        const latest = st.attempts.at(-1)!;
        if (found.confirmations === 0 && found.a === latest) {
          latest.sentAt ??= h;
          if (h - latest.sentAt >= BigInt(config.replaceAfterBlocks)) {
            try {
              await replace(order, st, ctx, h, log);
            } catch (err) {
              if (!(err instanceof PonteError && err.code.startsWith("KEY_SOURCE_"))) throw err;
              log.warn({ code: err.code }, "Cannot sign a replacement: the key source refused; still following the current attempt");
            }
          }
        }
      } else {
        // Nowhere: never sent (a crash after signing), or evicted. Its inputs tell which.
        const latest = st.attempts.at(-1)!;
        const ins = latest.tx.ins.map((i) => [Buffer.from(i.hash).reverse().toString("hex"), i.index]);
        const outs = await rpc.batchOrThrow<RpcTxOut | null>(ins.map((p) => ({ method: "gettxout", params: [...p, true] })));
        if (outs.every((o) => o !== null)) {
          if (await broadcast(latest, log)) await markBroadcast(order, latest, ctx, h);
        } else if ((st.missing = (st.missing ?? 0) + 1) >= 3) {
          // Spent, and by none of this order's transactions (looked up three polls running).
          await ctx.report({ orderId: order.orderId, attempt: wire(latest, "FAILED"), reason: "its inputs were spent by another transaction" });
          log.error({ tx_hash: latest.txid }, "Transfer failed: its inputs were spent by another transaction");
          states.delete(order.orderId);
          return;
        }
      }
      await delay(config.pollIntervalMs, ctx.signal);
    }
  }

  return {
    get active() {
      return states.size;
    },
    async execute(order, ctx) {
      const log = logger.child({ order_id: order.orderId, kind: order.kind, trade_id: order.tradeId ?? undefined });
      let st = states.get(order.orderId);
      if (!st) {
        const key = keys.keyFor(order.fromAddress, order.fromDerivationIndex);
        if (!key) {
          const reason = `from_address ${order.fromAddress} is not derivable from this agent's seed (not the hot wallet, not deposit index ${order.fromDerivationIndex})`;
          await ctx.report({ orderId: order.orderId, attempt: noTx("FAILED"), reason });
          log.error({ from_address: order.fromAddress, reason }, "Transfer refused");
          return;
        }
        const attempts: LiveAttempt[] = order.attempts
          .filter((a) => a.txHash !== "" && a.rawTx !== "")
          .map((a) => {
            const tx = Transaction.fromHex(a.rawTx);
            if (tx.getId() !== a.txHash) {
              throw new PonteError("INVALID_STATE", `Recorded attempt ${a.attempt} of order ${order.orderId} is not transaction ${a.txHash}`, { order_id: order.orderId });
            }
            const vsize = BigInt(tx.virtualSize());
            return { attempt: a.attempt, txid: a.txHash, rawTx: a.rawTx, fee: a.fee, satVb: vsize > 0n ? (a.fee + vsize - 1n) / vsize : 1n, tx, status: a.status === "SIGNED" || a.status === "PENDING" ? "SIGNED" : "BROADCAST", sentAt: null };
          });
        st = { key, attempts, coins: null };
        states.set(order.orderId, st);
        if (attempts.length) log.info({ attempts: attempts.length, tx_hash: attempts.at(-1)!.txid }, "Resuming a recorded transfer");
      }
      if (st.attempts.length === 0) {
        const s = st;
        const run = async () => {
          const p = await plan(order, s.key);
          if (p.kind === "end") return p;
          return signRecordBroadcast(order, s, ctx, 1, p, log);
        };
        const out = s.key.role === "hot" ? await withHotLock(run) : await run();
        if ("kind" in out) {
          await ctx.report({ orderId: order.orderId, attempt: noTx(out.status), reason: out.reason });
          log.info({ status: out.status, reason: out.reason }, "Transfer ended without a transaction");
          states.delete(order.orderId);
          return;
        }
        if (out.sent) await markBroadcast(order, out.attempt, ctx, await height());
      }
      await follow(order, st, ctx, log);
    },
  };
}
