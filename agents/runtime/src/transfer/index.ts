// The family-agnostic half of transfer orders: the order stream (reconnecting; a reconnect
// re-sends every pending order with its recorded attempts), de-duplication by order id,
// dependencies (a sweep waits for its gas top-up), retries of an execution that threw, and
// reports that are retried until the coordinator stores them. How a transfer is built, signed,
// broadcast and followed is the chain family's TransferExecutor.
import { childLogger, delay, PonteError, retry, type Logger } from "@ponte/common";
import type { CoordinatorClient } from "../client/index.js";
import type { AgentMetrics } from "../metrics/index.js";
import { isLeaseLost } from "../report/index.js";
import { FINAL_TRANSFER_STATUSES, type AgentIdentity, type TransferOrder, type TransferReport, type TransferStatus } from "../types.js";

export interface TransferRunContext {
  /** Aborted when the lease term ends: stop, report nothing more. */
  readonly signal: AbortSignal;
  /**
   * Sends a report and resolves once the coordinator stored it; transient failures are retried
   * until the term ends. Throws when the coordinator refuses it (then nothing may follow it:
   * a refused SIGNED must not be broadcast).
   */
  report(r: TransferReport): Promise<void>;
  /** The last status this term reported or was streamed for another order; undefined if unknown. */
  statusOf(orderId: string): TransferStatus | undefined;
}

export interface TransferExecutor {
  /**
   * Drives one order to its final report (CONFIRMED, FAILED or SKIPPED). Must be resumable:
   * when it threw it is called again with the same order and continues from what it recorded,
   * never signing a second transaction where the first may still land.
   */
  execute(order: TransferOrder, ctx: TransferRunContext): Promise<void>;
}

export type ReportSink = (r: TransferReport) => Promise<void>;

export interface TransferRunner {
  /** An order from the stream: started unless it already runs, ended, or waits for a dependency. */
  submit(order: TransferOrder): void;
  /** An order the stream could not read: reported FAILED with the reason, nothing sent. */
  reject(orderId: string, reason: string): void;
  statusOf(orderId: string): TransferStatus | undefined;
  readonly running: number;
  /** Resolves once no execution runs (after the signal aborted: once they all returned). */
  drain(): Promise<void>;
}

/**
 * Statuses remembered per term (for de-duplication and dependencies); the oldest are forgotten
 * beyond this, which only means trusting the coordinator about them, as after a restart.
 */
const MAX_REMEMBERED = 10_000;
/** Executions failing with errors not known to be transient are retried this often, then left until the order is re-sent. */
const DEFAULT_MAX_UNKNOWN_FAILURES = 8;
const MAX_BACKOFF_MS = 30_000;

/**
 * Errors worth waiting out: an outage of the node, the coordinator or the key source. A key
 * source that refuses us (token revoked) is waited out too: signing stays closed until an
 * operator fixes Vault, and the order resumes by itself then.
 */
export function isTransientTransferError(err: unknown): boolean {
  if (err instanceof PonteError) return err.retryable || err.code.startsWith("KEY_SOURCE_");
  return false;
}

export function createTransferRunner(
  common: { logger: Logger },
  o: {
    network: string;
    executor: TransferExecutor;
    report: ReportSink;
    signal: AbortSignal;
    metrics?: AgentMetrics;
    onLeaseLost?: (reason: string) => void;
    maxUnknownFailures?: number;
  },
): TransferRunner {
  const logger = childLogger(common.logger, { network: o.network, component: "transfers" });
  const remembered = new Map<string, TransferStatus>();
  const statuses = {
    get: (id: string) => remembered.get(id),
    set(id: string, status: TransferStatus) {
      remembered.delete(id);
      remembered.set(id, status);
      // Map keeps insertion order: the first key is the least recently updated.
      if (remembered.size > MAX_REMEMBERED) remembered.delete(remembered.keys().next().value!);
    },
  };
  const running = new Map<string, Promise<void>>();
  /** dependency order id → orders waiting for it to be CONFIRMED */
  const parked = new Map<string, Map<string, TransferOrder>>();
  const isParked = (id: string) => [...parked.values()].some((m) => m.has(id));
  const setInFlight = () => o.metrics?.setTransfersInFlight(running.size);

  const ctx: TransferRunContext = {
    signal: o.signal,
    statusOf: (id) => statuses.get(id),
    async report(r) {
      await o.report(r);
      statuses.set(r.orderId, r.attempt.status);
      o.metrics?.transferReport(r.attempt.status);
      if (FINAL_TRANSFER_STATUSES.has(r.attempt.status)) settle(r.orderId, r.attempt.status);
    },
  };

  // A dependency reached a final status: its dependants start (CONFIRMED) or are left to the
  // coordinator, which decides what replaces a failed top-up.
  const settle = (id: string, status: TransferStatus) => {
    const waiting = parked.get(id);
    if (!waiting) return;
    parked.delete(id);
    for (const order of waiting.values()) {
      if (status === "CONFIRMED") {
        logger.info({ order_id: order.orderId, depends_on: id }, "Dependency confirmed; starting the order");
        start(order);
      } else {
        logger.warn({ order_id: order.orderId, depends_on: id, dependency_status: status }, "Dependency did not confirm; the order is not executed");
      }
    }
  };

  const run = async (order: TransferOrder): Promise<void> => {
    const log = logger.child({ order_id: order.orderId, kind: order.kind, trade_id: order.tradeId ?? undefined });
    let unknownFailures = 0;
    let failures = 0;
    while (!o.signal.aborted) {
      try {
        await o.executor.execute(order, ctx);
        return;
      } catch (err) {
        if (o.signal.aborted) return;
        if (isLeaseLost(err)) {
          o.onLeaseLost?.("ReportTransfer: lease lost");
          return;
        }
        o.metrics?.transferError();
        failures++;
        const transient = isTransientTransferError(err);
        if (!transient) unknownFailures++;
        if (unknownFailures >= (o.maxUnknownFailures ?? DEFAULT_MAX_UNKNOWN_FAILURES)) {
          log.error({ err, attempt: failures }, "Transfer order keeps failing; left until the coordinator sends it again");
          return;
        }
        const waitMs = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures - 1, 6));
        if (transient) log.warn({ err, attempt: failures, wait_ms: waitMs }, "Transfer order paused by an outage; resuming it");
        else log.error({ err, attempt: failures, wait_ms: waitMs }, "Transfer order failed; resuming it from what was recorded");
        await delay(waitMs, o.signal);
      }
    }
  };

  const start = (order: TransferOrder) => {
    if (o.signal.aborted || running.has(order.orderId)) return;
    const p = run(order).finally(() => {
      running.delete(order.orderId);
      setInFlight();
    });
    running.set(order.orderId, p);
    setInFlight();
  };

  return {
    submit(order) {
      if (o.signal.aborted) return;
      const id = order.orderId;
      if (FINAL_TRANSFER_STATUSES.has(order.status)) {
        statuses.set(id, order.status);
        settle(id, order.status);
        return;
      }
      const known = statuses.get(id);
      // Re-sent after a reconnect while it runs, or already ended here: nothing new to do.
      if ((known && FINAL_TRANSFER_STATUSES.has(known)) || running.has(id) || isParked(id)) return;
      if (!known) statuses.set(id, order.status);
      if (order.dependsOn) {
        const dep = statuses.get(order.dependsOn);
        // The coordinator streams an order only once its dependency is CONFIRMED; where this
        // term knows better (it is still following the top-up), the order waits: a sweep must
        // never start before its gas top-up is final.
        if (dep !== undefined && dep !== "CONFIRMED") {
          if (FINAL_TRANSFER_STATUSES.has(dep)) {
            logger.warn({ order_id: id, depends_on: order.dependsOn, dependency_status: dep }, "Order refused: its dependency did not confirm");
            return;
          }
          logger.info({ order_id: id, depends_on: order.dependsOn, dependency_status: dep }, "Order waits for its dependency to confirm");
          let m = parked.get(order.dependsOn);
          if (!m) parked.set(order.dependsOn, (m = new Map()));
          m.set(id, order);
          return;
        }
      }
      start(order);
    },
    reject(orderId, reason) {
      if (o.signal.aborted || running.has(orderId)) return;
      const known = statuses.get(orderId);
      if (known && FINAL_TRANSFER_STATUSES.has(known)) return;
      logger.error({ order_id: orderId, reason }, "Unreadable transfer order; reporting it FAILED");
      const p = ctx
        .report({ orderId, attempt: { attempt: 0, txHash: "", rawTx: "", nonce: null, fee: 0n, status: "FAILED" }, reason })
        .catch((err: unknown) => {
          if (isLeaseLost(err)) o.onLeaseLost?.("ReportTransfer: lease lost");
          else if (!o.signal.aborted) logger.error({ err, order_id: orderId }, "Could not report an unreadable order");
        })
        .finally(() => running.delete(orderId));
      running.set(orderId, p);
    },
    statusOf: (id) => statuses.get(id),
    get running() {
      return running.size;
    },
    async drain() {
      while (running.size) await Promise.allSettled([...running.values()]);
    },
  };
}

/** ReportTransfer with retries of transient failures until the term ends; LEASE_LOST ends the term. */
export function createTransferReportSink(
  common: { logger: Logger },
  o: { client: CoordinatorClient; identity: AgentIdentity; signal: AbortSignal; metrics: AgentMetrics; onLeaseLost: (reason: string) => void },
): ReportSink {
  const logger = childLogger(common.logger, { network: o.identity.network, component: "transfers" });
  return async (r) => {
    try {
      await retry(() => o.client.reportTransfer(o.identity, r), {
        name: "ReportTransfer",
        logger,
        signal: o.signal,
        attempts: Number.POSITIVE_INFINITY,
        baseMs: 200,
        maxMs: 5_000,
        isRetryable: (err) => err instanceof PonteError && err.retryable,
        onRetry: () => o.metrics.coordinatorRetry("ReportTransfer"),
      });
    } catch (err) {
      if (isLeaseLost(err)) o.onLeaseLost("ReportTransfer: lease lost");
      throw err;
    }
    logger.info(
      {
        order_id: r.orderId,
        status: r.attempt.status,
        attempt: r.attempt.attempt,
        tx_hash: r.attempt.txHash || undefined,
        nonce: r.attempt.nonce?.toString(),
        fee: r.attempt.fee.toString(),
        block_number: r.blockHeight?.toString(),
        reason: r.reason,
      },
      "Transfer reported",
    );
  };
}

/**
 * Reads StreamTransferOrders for one lease term and hands each order to the runner, reconnecting
 * with backoff (a coordinator without transfer support answers UNIMPLEMENTED: the agent keeps
 * watching and asks again now and then). Returns when the signal aborts or the lease is lost.
 */
export async function consumeTransferOrders(
  common: { logger: Logger },
  o: { client: CoordinatorClient; identity: AgentIdentity; signal: AbortSignal; runner: TransferRunner; onLeaseLost: (reason: string) => void },
): Promise<void> {
  const logger = childLogger(common.logger, { network: o.identity.network, component: "transfers" });
  let failures = 0;
  while (!o.signal.aborted) {
    const stream = o.client.streamTransferOrders(o.identity);
    const cancel = () => stream.cancel();
    o.signal.addEventListener("abort", cancel, { once: true });
    const opened = Date.now();
    let received = 0;
    try {
      for await (const m of stream.messages) {
        received++;
        if (m.ok) o.runner.submit(m.order);
        else o.runner.reject(m.orderId, m.reason);
      }
      if (o.signal.aborted) break;
      logger.info({ orders: received }, "Transfer order stream ended; reconnecting");
    } catch (err) {
      if (o.signal.aborted) break;
      if (isLeaseLost(err)) {
        o.onLeaseLost("StreamTransferOrders: lease lost");
        break;
      }
      logger.warn({ err, attempt: failures + 1 }, "Transfer order stream failed; reconnecting");
    } finally {
      o.signal.removeEventListener("abort", cancel);
    }
    // A stream that lived a while (or delivered orders) was healthy: reconnect at once-ish.
    failures = received > 0 || Date.now() - opened > 30_000 ? 0 : failures + 1;
    await delay(Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 7)), o.signal);
  }
}
