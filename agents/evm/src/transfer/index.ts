// The EVM transfer executor: one order at a time per sending address from planning to the
// final report. The rule everything hangs on: a transaction is broadcast only after the
// coordinator acknowledged it as SIGNED (hash, raw bytes, nonce), so whatever happens next —
// a crash, a lost lease, a restart on another host — the coordinator holds the very bytes that
// may land, and a resumed order re-broadcasts them instead of signing anew. Every attempt of an
// order (a replacement included) uses the same nonce, so at most one of them can ever land.
import type { AgentMetrics, TransferAttempt, TransferExecutor, TransferOrder, TransferRunContext, TransferStatus } from "@ponte/agent-runtime";
import { childLogger, crashPoint, delay, PonteError, RetryableError, type Logger } from "@ponte/common";
import { getAddress, Transaction } from "ethers";
import { transferSettings, type EvmConfig, type TokenConfig, type TransferSettings } from "../config/index.js";
import type { SignerKey, EvmKeys } from "../keys/index.js";
import type { HeadWatcher } from "../rpc/heads.js";
import { RpcError, RpcTransportError, toHex, type EvmRpc } from "../rpc/index.js";
import { encodeTransfer, ESTIMATE_RECIPIENT, tokenBalance } from "./erc20.js";
import { readFees, replacementFees, type Fees } from "./fees.js";
import { createNonceManager, type NonceManager } from "./nonce.js";

export { readFees, replacementFees, capFees, bump, type Fees } from "./fees.js";
export { createNonceManager, type NonceManager } from "./nonce.js";
export { ERC20, encodeTransfer, tokenBalance, ESTIMATE_RECIPIENT } from "./erc20.js";
export { createBalanceMonitor, type BalanceMonitor, type BalanceReading } from "./balances.js";

export interface EvmTransferDeps {
  config: EvmConfig;
  rpc: EvmRpc;
  keys: EvmKeys;
  /** Wakes the receipt loop at each new head; it polls at config.pollIntervalMs without one. */
  heads?: HeadWatcher;
  metrics?: AgentMetrics;
}

/** A recorded attempt as this process follows it. */
interface LiveAttempt {
  attempt: number;
  txHash: string;
  rawTx: string;
  nonce: bigint;
  /** gasLimit × maxFeePerGas: the most it can cost. */
  maxCost: bigint;
  tx: Transaction;
  status: "SIGNED" | "BROADCAST";
  /** Head height when it was (last known to be) sent; a replacement is due replaceAfterBlocks later. */
  sentAt: bigint | null;
  /** The node's last refusal of it, so a repeated refusal is logged once. */
  lastRefusal?: string;
}

interface OrderState {
  key: SignerKey;
  attempts: LiveAttempt[];
  /** Replacement problems are logged once per distinct reason, not at every block. */
  lastReplaceWarning?: string;
}

/** What to send, or the report that ends the order without a transaction. */
type Plan =
  | { kind: "send"; to: string; value: bigint; data: string; gasLimit: bigint; fees: Fees }
  | { kind: "end"; status: "CONFIRMED" | "FAILED" | "SKIPPED"; reason: string };

interface RpcReceipt {
  transactionHash: string;
  blockNumber: string;
  blockHash: string;
  status?: string;
  gasUsed: string;
  effectiveGasPrice?: string;
}

const NATIVE_GAS = 21_000n;
const end = (status: "CONFIRMED" | "FAILED" | "SKIPPED", reason: string): Plan => ({ kind: "end", status, reason });
const margin = (gas: bigint) => (gas * 6n + 4n) / 5n; // +20 %, rounded up

/** Refusals of the node (JSON-RPC errors) and outages become errors the runner understands. */
function asTransient(err: unknown): unknown {
  if (err instanceof RpcTransportError) return new RetryableError("UNAVAILABLE", err.message, { reason: "node_unreachable" }, { cause: err });
  return err;
}

export interface EvmTransferExecutor extends TransferExecutor {
  /** Orders this executor is following (tests and metrics). */
  readonly active: number;
}

/**
 * One executor per lease term: its nonce floors and per-order state start from the node and
 * from the attempts the coordinator streams with each order.
 */
export function createEvmTransferExecutor(common: { logger: Logger }, deps: EvmTransferDeps): EvmTransferExecutor {
  const { config, rpc, keys } = deps;
  const settings: TransferSettings = transferSettings(config);
  const logger = childLogger(common.logger, { network: config.network, component: "transfers" });
  const nonces: NonceManager = createNonceManager({ rpc });
  const states = new Map<string, OrderState>();
  const tokens = new Map<string, TokenConfig>(config.tokens.map((t) => [t.contract.toLowerCase(), t]));

  const head = async () => BigInt(await rpc.call<string>("eth_blockNumber", []));
  const finalizedHeight = async (h: bigint): Promise<bigint> => {
    if (config.finality.kind === "confirmations") {
      const f = h - BigInt(config.finality.confirmations) + 1n;
      return f > 0n ? f : 0n;
    }
    const b = await rpc.call<{ number: string } | null>("eth_getBlockByNumber", ["finalized", false]);
    return b ? BigInt(b.number) : 0n;
  };
  const balance = async (address: string, block = "pending") => BigInt(await rpc.call<string>("eth_getBalance", [address, block]));
  /** Until the next head after `seen` (a `heads.seq` read before the chain was), or the poll interval. */
  const wait = async (signal: AbortSignal, seen: number | undefined) => {
    if (deps.heads && seen !== undefined) await deps.heads.next(config.pollIntervalMs, signal, seen);
    else await delay(config.pollIntervalMs, signal);
  };

  /** eth_estimateGas; a JSON-RPC refusal (the call would revert) comes back as { refused }. */
  const estimate = async (call: { from: string; to: string; value?: bigint; data?: string }): Promise<bigint | { refused: string }> => {
    try {
      const params: Record<string, string> = { from: call.from, to: call.to };
      if (call.value !== undefined) params.value = toHex(call.value);
      if (call.data !== undefined) params.data = call.data;
      return BigInt(await rpc.call<string>("eth_estimateGas", [params]));
    } catch (err) {
      if (err instanceof RpcError) return { refused: err.message };
      throw err;
    }
  };
  // A plain transfer to an account costs exactly 21,000; anything dearer runs code, so it gets a margin.
  const nativeGas = async (from: string, to: string, value: bigint) => {
    const g = await estimate({ from, to, value });
    if (typeof g !== "bigint") return g;
    return g <= NATIVE_GAS ? NATIVE_GAS : margin(g);
  };
  const tokenGas = (g: bigint) => {
    const withMargin = margin(g);
    return withMargin > settings.erc20GasLimit ? withMargin : settings.erc20GasLimit;
  };

  /** The coordinator's recorded attempts, checked against the key that must have signed them. */
  function resume(order: TransferOrder, key: SignerKey): LiveAttempt[] {
    const out: LiveAttempt[] = [];
    for (const a of order.attempts) {
      if (a.txHash === "" || a.rawTx === "") continue;
      const tx = Transaction.from(a.rawTx);
      if (tx.hash?.toLowerCase() !== a.txHash.toLowerCase() || tx.from?.toLowerCase() !== key.address.toLowerCase()) {
        // Not this order's transaction: acting on it (or failing the order) could be wrong either
        // way, so the order stops here for an operator.
        throw new PonteError("INVALID_STATE", `Recorded attempt ${a.attempt} of order ${order.orderId} is not a transaction of ${key.address} with hash ${a.txHash}`, {
          order_id: order.orderId,
          attempt: a.attempt,
        });
      }
      out.push({
        attempt: a.attempt,
        txHash: tx.hash,
        rawTx: a.rawTx,
        nonce: BigInt(tx.nonce),
        maxCost: tx.gasLimit * (tx.maxFeePerGas ?? 0n),
        tx,
        status: a.status === "SIGNED" || a.status === "PENDING" ? "SIGNED" : "BROADCAST",
        sentAt: null,
      });
    }
    const nonceSet = new Set(out.map((a) => a.nonce));
    if (nonceSet.size > 1) {
      throw new PonteError("INVALID_STATE", `Recorded attempts of order ${order.orderId} use different nonces`, { order_id: order.orderId });
    }
    return out.sort((a, b) => a.attempt - b.attempt);
  }

  const wire = (a: LiveAttempt, status: TransferStatus, fee = a.maxCost): TransferAttempt => ({
    attempt: a.attempt,
    txHash: a.txHash,
    rawTx: a.rawTx,
    nonce: a.nonce,
    fee,
    status,
  });
  const noTx = (status: TransferStatus): TransferAttempt => ({ attempt: 0, txHash: "", rawTx: "", nonce: null, fee: 0n, status });

  /** Decides what an order sends, from the chain as it is now (balances, fees, estimates). */
  async function plan(order: TransferOrder, key: SignerKey): Promise<Plan> {
    let to: string;
    try {
      to = getAddress(order.toAddress);
    } catch {
      return end("FAILED", `to_address ${order.toAddress} is not an EVM address`);
    }
    const token = order.contract === null ? null : tokens.get(order.contract.toLowerCase());
    if (order.contract !== null && !token) return end("FAILED", `contract ${order.contract} is not a token this agent is configured for`);
    // Defence in depth: the coordinator chooses destinations, but funds only ever flow along the
    // paths the kinds describe, so a confused or compromised coordinator cannot redirect a sweep.
    switch (order.kind) {
      case "SWEEP":
      case "CUSTODIAL_SELL":
        if (to !== keys.hot.address) return end("FAILED", `a ${order.kind} goes to the hot wallet ${keys.hot.address}, not ${to}`);
        if (key.role !== (order.kind === "SWEEP" ? "deposit" : "custodial")) {
          return end("FAILED", `a ${order.kind} comes from a ${order.kind === "SWEEP" ? "deposit address" : "custodial wallet"}, not the hot wallet`);
        }
        break;
      case "REBALANCE":
        if (key.role !== "hot") return end("FAILED", "a REBALANCE comes from the hot wallet");
        if (settings.coldWallet === null) return end("FAILED", "no cold_wallet is configured for this network");
        if (to !== settings.coldWallet) return end("FAILED", `a REBALANCE goes to the cold wallet ${settings.coldWallet}, not ${to}`);
        break;
      case "GAS_TOPUP":
        if (key.role !== "hot") return end("FAILED", "a GAS_TOPUP comes from the hot wallet");
        if (!token) return end("FAILED", "a GAS_TOPUP names the token whose transfer it pays for");
        if (order.amount !== 0n) return end("FAILED", `a GAS_TOPUP has amount 0 (the agent computes it), not ${order.amount}`);
        break;
      case "REFUND":
        break;
    }

    const fees = await readFees(rpc, settings.maxFeePerGas);
    if (fees.baseFee > settings.maxFeePerGas) {
      // Signing now would record a transaction no block will take; wait for fees to come down.
      throw new RetryableError("UNAVAILABLE", `The next block's base fee (${fees.baseFee} wei) is above the cap (${settings.maxFeePerGas} wei); waiting`, {
        reason: "fee_above_cap",
        base_fee: fees.baseFee.toString(),
        cap: settings.maxFeePerGas.toString(),
      });
    }

    if (order.kind === "GAS_TOPUP") {
      const held = await tokenBalance(rpc, token!.contract, to);
      const g = await estimate({ from: to, to: token!.contract, data: encodeTransfer(ESTIMATE_RECIPIENT, held) });
      const sweepGas = typeof g === "bigint" ? tokenGas(g) : settings.erc20GasLimit;
      const need = sweepGas * fees.maxFeePerGas;
      const has = await balance(to, "latest");
      if (has >= need) return end("CONFIRMED", `${to} already holds ${has} wei, enough for ${sweepGas} gas at ${fees.maxFeePerGas} wei: no top-up sent`);
      const value = need - has;
      const gasLimit = await nativeGas(key.address, to, value);
      if (typeof gasLimit !== "bigint") return end("FAILED", `the node refused to estimate the top-up: ${gasLimit.refused}`);
      return checkFunds({ kind: "send", to, value, data: "0x", gasLimit, fees }, key, order);
    }

    if (!token) {
      const gasLimit = await nativeGas(key.address, to, order.amount);
      if (typeof gasLimit !== "bigint") return end("FAILED", `the node refused to estimate the transfer: ${gasLimit.refused}`);
      const fee = gasLimit * fees.maxFeePerGas;
      const value = order.deductFee ? order.amount - fee : order.amount;
      if (value <= 0n) {
        // Sweeping dust that does not cover its own fee is not worth it; a refund that cannot be
        // paid is a failure the coordinator must decide about.
        return end(order.kind === "SWEEP" ? "SKIPPED" : "FAILED", `the fee (${fee} wei) is not less than the amount (${order.amount} wei)`);
      }
      return checkFunds({ kind: "send", to, value, data: "0x", gasLimit, fees }, key, order);
    }

    if (order.deductFee) logger.debug({ order_id: order.orderId }, "deduct_fee ignored: the fee of a token transfer is paid in the native asset");
    const data = encodeTransfer(to, order.amount);
    const g = await estimate({ from: key.address, to: token.contract, data });
    if (typeof g !== "bigint") return end("FAILED", `the token transfer would revert: ${g.refused}`);
    return checkFunds({ kind: "send", to: token.contract, value: 0n, data, gasLimit: tokenGas(g), fees }, key, order);
  }

  /** The fee guard and the balances, last, on the fee actually signed. */
  async function checkFunds(p: Extract<Plan, { kind: "send" }>, key: SignerKey, order: TransferOrder): Promise<Plan> {
    let fees = p.fees;
    const native = await balance(key.address);
    if (order.contract !== null && order.kind !== "GAS_TOPUP") {
      const held = await tokenBalance(rpc, order.contract, key.address, "pending");
      if (held < order.amount) return end("FAILED", `${key.address} holds ${held} of ${order.contract}, less than the ${order.amount} to send`);
      if (native < p.gasLimit * fees.maxFeePerGas && key.role !== "hot") {
        // The gas top-up was computed at the fees of its time; when they rose since, spend what
        // the address holds, provided that still beats the next block's base fee.
        const affordable = native / p.gasLimit;
        if (affordable <= fees.baseFee) {
          return end("FAILED", `${key.address} holds ${native} wei, not enough for ${p.gasLimit} gas above the base fee ${fees.baseFee}: it needs a new gas top-up`);
        }
        fees = { ...fees, maxFeePerGas: affordable, maxPriorityFeePerGas: fees.maxPriorityFeePerGas > affordable - fees.baseFee ? affordable - fees.baseFee : fees.maxPriorityFeePerGas };
      }
    }
    const fee = p.gasLimit * fees.maxFeePerGas;
    if (order.kind === "SWEEP" && order.maxFee !== null && fee > order.maxFee) {
      return end("SKIPPED", `the fee (${fee} wei for ${p.gasLimit} gas at ${fees.maxFeePerGas} wei) exceeds max_fee (${order.maxFee} wei)`);
    }
    if (native < p.value + fee) return end("FAILED", `${key.address} holds ${native} wei, less than the ${p.value} to send plus the fee ${fee}`);
    return { ...p, fees };
  }

  /**
   * Broadcasts a recorded attempt. A refusal is not read by its message ("already known",
   * "nonce too low", …): the chain is asked whether the transaction, or a sibling attempt, is
   * already there. false: the node refused it and it was not there; it stays recorded and is
   * sent again by the receipt loop.
   */
  async function broadcast(st: OrderState, a: LiveAttempt, log: Logger): Promise<boolean> {
    try {
      await rpc.call("eth_sendRawTransaction", [a.rawTx]);
      return true;
    } catch (err) {
      if (!(err instanceof RpcError)) throw asTransient(err);
      const [receipts, known] = await Promise.all([findReceipt(st), rpc.call<unknown>("eth_getTransactionByHash", [a.txHash])]);
      if (receipts || known) return true;
      // Sent again at every poll: say so once per distinct refusal, not every time.
      if (a.lastRefusal !== err.message) {
        log.warn({ tx_hash: a.txHash, attempt: a.attempt, node_error: err.message, code: err.code }, "The node refused the transaction; it stays recorded and is sent again");
      }
      a.lastRefusal = err.message;
      return false;
    }
  }

  async function findReceipt(st: OrderState): Promise<{ receipt: RpcReceipt; attempt: LiveAttempt } | null> {
    const rs = await rpc.batch(st.attempts.map((a) => ({ method: "eth_getTransactionReceipt", params: [a.txHash] })));
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i]!;
      if (!r.ok) throw r.error;
      if (r.result) return { receipt: r.result as RpcReceipt, attempt: st.attempts[i]! };
    }
    return null;
  }

  /**
   * Signs attempt n at nonce with the plan, records it (SIGNED, acknowledged) and broadcasts it,
   * all under the address's lock. Returns the attempt and whether the node took it.
   */
  async function signRecordBroadcast(
    order: TransferOrder,
    st: OrderState,
    ctx: TransferRunContext,
    o: { attempt: number; nonce: bigint; to: string; value: bigint; data: string; gasLimit: bigint; fees: Fees },
    log: Logger,
  ): Promise<{ attempt: LiveAttempt; sent: boolean }> {
    const unsigned: Parameters<EvmKeys["sign"]>[1] = {
      type: 2,
      chainId: config.chainId,
      nonce: Number(o.nonce),
      to: o.to,
      value: o.value,
      data: o.data,
      gasLimit: o.gasLimit,
      maxFeePerGas: o.fees.maxFeePerGas,
      maxPriorityFeePerGas: o.fees.maxPriorityFeePerGas,
    };
    const signed = await keys.sign(st.key, unsigned);
    const a: LiveAttempt = {
      attempt: o.attempt,
      txHash: signed.hash,
      rawTx: signed.raw,
      nonce: o.nonce,
      maxCost: o.gasLimit * o.fees.maxFeePerGas,
      tx: Transaction.from(signed.raw),
      status: "SIGNED",
      sentAt: null,
    };
    // Recorded before broadcast: if this report is refused or never acknowledged, the
    // transaction is dropped unsent and its nonce stays free.
    await ctx.report({ orderId: order.orderId, attempt: wire(a, "SIGNED") });
    st.attempts.push(a);
    nonces.commit(st.key.address, a.nonce);
    log.info({ attempt: a.attempt, tx_hash: a.txHash, nonce: a.nonce.toString(), max_fee_per_gas: o.fees.maxFeePerGas.toString(), gas_limit: o.gasLimit.toString() }, "Transfer signed and recorded");
    crashPoint("transfer.after_sign");
    const sent = await broadcast(st, a, log);
    if (sent) crashPoint("transfer.after_broadcast");
    return { attempt: a, sent };
  }

  async function markBroadcast(order: TransferOrder, a: LiveAttempt, ctx: TransferRunContext, at: bigint): Promise<void> {
    a.sentAt ??= at;
    if (a.status === "BROADCAST") return;
    await ctx.report({ orderId: order.orderId, attempt: wire(a, "BROADCAST") });
    a.status = "BROADCAST";
  }

  /** A fresh order: plan, take the next nonce, sign, record, broadcast. */
  async function start(order: TransferOrder, st: OrderState, ctx: TransferRunContext, log: Logger): Promise<boolean> {
    const outcome = await nonces.withLock(st.key.address, async () => {
      const p = await plan(order, st.key);
      if (p.kind === "end") return p;
      const nonce = await nonces.next(st.key.address);
      return signRecordBroadcast(order, st, ctx, { attempt: 1, nonce, ...p }, log);
    });
    if ("kind" in outcome) {
      await ctx.report({ orderId: order.orderId, attempt: noTx(outcome.status), reason: outcome.reason });
      log.info({ status: outcome.status, reason: outcome.reason }, "Transfer ended without a transaction");
      return false;
    }
    if (outcome.sent) await markBroadcast(order, outcome.attempt, ctx, await head());
    return true;
  }

  /** A stuck attempt: the same nonce again with fees bumped, recorded before it is broadcast. */
  async function replace(order: TransferOrder, st: OrderState, ctx: TransferRunContext, h: bigint, log: Logger): Promise<void> {
    const prev = st.attempts.at(-1)!;
    const warnOnce = (reason: string, extra: Record<string, unknown> = {}) => {
      if (st.lastReplaceWarning !== reason) log.warn({ tx_hash: prev.txHash, reason, ...extra }, "Stuck transfer not replaced");
      st.lastReplaceWarning = reason;
    };
    const now = await readFees(rpc, settings.maxFeePerGas);
    const fees = replacementFees({ maxFeePerGas: prev.tx.maxFeePerGas ?? 0n, maxPriorityFeePerGas: prev.tx.maxPriorityFeePerGas ?? 0n }, now, settings.maxFeePerGas);
    if (!fees) return warnOnce("the fee bump would exceed max_fee_per_gas_gwei", { cap: settings.maxFeePerGas.toString() });
    const gasLimit = prev.tx.gasLimit;
    const fee = gasLimit * fees.maxFeePerGas;
    let value = prev.tx.value;
    // A native transfer paying its own fee shrinks by what the bump costs.
    if (order.contract === null && order.deductFee && order.kind !== "GAS_TOPUP") value = order.amount - fee;
    if (value < 0n || (value === 0n && order.contract === null && order.kind !== "GAS_TOPUP")) return warnOnce("the bumped fee leaves nothing to send");
    if (order.kind === "SWEEP" && order.maxFee !== null && fee > order.maxFee) return warnOnce("the bumped fee would exceed max_fee", { max_fee: order.maxFee.toString() });
    const has = await balance(st.key.address, "latest");
    if (has < value + fee) return warnOnce("the sender cannot pay the bumped fee", { balance: has.toString(), needed: (value + fee).toString() });

    const outcome = await nonces.withLock(st.key.address, () =>
      signRecordBroadcast(order, st, ctx, { attempt: prev.attempt + 1, nonce: prev.nonce, to: prev.tx.to!, value, data: prev.tx.data, gasLimit, fees }, log),
    );
    st.lastReplaceWarning = undefined;
    deps.metrics?.transferReplaced();
    log.warn(
      { replaced_tx_hash: prev.txHash, tx_hash: outcome.attempt.txHash, attempt: outcome.attempt.attempt, max_fee_per_gas: fees.maxFeePerGas.toString(), blocks_waited: prev.sentAt === null ? undefined : (h - prev.sentAt).toString() },
      "Stuck transfer replaced with a fee bump",
    );
    if (outcome.sent) await markBroadcast(order, outcome.attempt, ctx, h);
  }

  /**
   * Follows the order's attempts until one is final by the network's rule (CONFIRMED, or FAILED
   * when it reverted) or their shared nonce was finally used by another transaction (FAILED).
   * Sends the latest attempt again while no block has it, and replaces it when stuck.
   */
  async function follow(order: TransferOrder, st: OrderState, ctx: TransferRunContext, log: Logger): Promise<void> {
    while (!ctx.signal.aborted) {
      const seen = deps.heads?.seq;
      const h = await head();
      const mined = await findReceipt(st);
      if (mined) {
        const { receipt, attempt: a } = mined;
        const at = BigInt(receipt.blockNumber);
        // It went out even if this process never saw the node accept it (a crash in between).
        await markBroadcast(order, a, ctx, at);
        if (at <= (await finalizedHeight(h))) {
          const fee = BigInt(receipt.gasUsed) * BigInt(receipt.effectiveGasPrice ?? a.tx.maxFeePerGas ?? 0n);
          const ok = receipt.status === undefined || BigInt(receipt.status) === 1n;
          // A reverted transaction spent its fee and moved nothing: FAILED, never CONFIRMED.
          await ctx.report({ orderId: order.orderId, attempt: wire(a, ok ? "CONFIRMED" : "FAILED", fee), reason: ok ? undefined : "reverted", blockHeight: at });
          log.info({ status: ok ? "CONFIRMED" : "FAILED", tx_hash: a.txHash, attempt: a.attempt, block_number: at.toString(), fee: fee.toString() }, ok ? "Transfer confirmed" : "Transfer reverted");
          states.delete(order.orderId);
          return;
        }
      } else {
        const latest = st.attempts.at(-1)!;
        const pending = latest.status === "BROADCAST" ? await rpc.call<unknown>("eth_getTransactionByHash", [latest.txHash]) : null;
        if (!pending) {
          // Never accepted, or dropped from the node's pool (restart, eviction): send it again.
          if (await broadcast(st, latest, log)) await markBroadcast(order, latest, ctx, h);
        }
        latest.sentAt ??= h;
        if (await nonceUsedElsewhere(st, h)) {
          await ctx.report({ orderId: order.orderId, attempt: wire(latest, "FAILED"), reason: `nonce ${latest.nonce} was used by another transaction of ${st.key.address}` });
          log.error({ tx_hash: latest.txHash, nonce: latest.nonce.toString() }, "Transfer failed: its nonce was used by another transaction");
          states.delete(order.orderId);
          return;
        }
        if (h - latest.sentAt >= BigInt(settings.replaceAfterBlocks) && (await nextToMine(st, log))) {
          try {
            await replace(order, st, ctx, h, log);
          } catch (err) {
            // Signing fails closed (Vault lost): the attempt already out there is still followed.
            if (!(err instanceof PonteError && err.code.startsWith("KEY_SOURCE_"))) throw err;
            log.warn({ code: err.code, reason: err.details.reason }, "Cannot sign a replacement: the key source refused; still following the current attempt");
          }
        }
      }
      await wait(ctx.signal, seen);
    }
  }

  /**
   * Whether the order's nonce is the account's next to be mined. When a lower one is still
   * pending, this transaction waits for it, not for fees: bumping it would not help.
   */
  async function nextToMine(st: OrderState, log: Logger): Promise<boolean> {
    const count = BigInt(await rpc.call<string>("eth_getTransactionCount", [st.key.address, "latest"]));
    if (count >= st.attempts[0]!.nonce) return true;
    const reason = `waiting for nonce ${count} of ${st.key.address} to be mined first`;
    if (st.lastReplaceWarning !== reason) log.info({ nonce: st.attempts[0]!.nonce.toString(), reason }, "Stuck transfer not replaced");
    st.lastReplaceWarning = reason;
    return false;
  }

  /**
   * No attempt has a receipt, yet the account's count at the final block is past their nonce:
   * another transaction took it, and none of this order's can ever land.
   */
  async function nonceUsedElsewhere(st: OrderState, h: bigint): Promise<boolean> {
    const fin = await finalizedHeight(h);
    const count = BigInt(await rpc.call<string>("eth_getTransactionCount", [st.key.address, toHex(fin)]));
    const nonce = st.attempts[0]!.nonce;
    if (count <= nonce) return false;
    // The receipts were read before the count: read them again so a transaction mined in between is not misjudged.
    return (await findReceipt(st)) === null;
  }

  return {
    get active() {
      return states.size;
    },
    async execute(order, ctx) {
      const log = logger.child({ order_id: order.orderId, kind: order.kind, trade_id: order.tradeId ?? undefined });
      try {
        let st = states.get(order.orderId);
        if (!st) {
          const account = order.kind === "CUSTODIAL_SELL" ? "custodial" : "deposit";
          const key = keys.keyFor(order.fromAddress, order.fromDerivationIndex, account);
          if (!key) {
            const reason = `from_address ${order.fromAddress} is not derivable from this agent's seed (not the hot wallet, not ${account} index ${order.fromDerivationIndex})`;
            await ctx.report({ orderId: order.orderId, attempt: noTx("FAILED"), reason });
            log.error({ from_address: order.fromAddress, reason }, "Transfer refused");
            return;
          }
          st = { key, attempts: resume(order, key) };
          for (const a of st.attempts) nonces.commit(key.address, a.nonce);
          states.set(order.orderId, st);
          if (st.attempts.length) log.info({ attempts: st.attempts.length, tx_hash: st.attempts.at(-1)!.txHash }, "Resuming a recorded transfer");
        }
        if (st.attempts.length === 0 && !(await start(order, st, ctx, log))) {
          states.delete(order.orderId);
          return;
        }
        await follow(order, st, ctx, log);
      } catch (err) {
        throw asTransient(err);
      }
    },
  };
}
