// The runner with an in-test executor and report sink (no coordinator): de-duplication of
// re-sent orders, dependencies, retries of an execution that threw, unreadable orders.
import { createLogger, PonteError, RetryableError } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterEach, describe, expect, it } from "vitest";
import { fromTransferOrder } from "../client/index.js";
import type { TransferOrder, TransferReport } from "../types.js";
import { createTransferRunner, type TransferExecutor, type TransferRunContext } from "./index.js";
import { agentv1 } from "@ponte/proto";

const logger = createLogger({ name: "runner-test", level: process.env.PONTE_TEST_LOG ?? "silent" });
let ac = new AbortController();
afterEach(() => {
  ac.abort();
  ac = new AbortController();
});

const order = (id: string, o: Partial<TransferOrder> = {}): TransferOrder => ({
  orderId: id,
  kind: "SWEEP",
  tradeId: null,
  fromAddress: "0xfrom",
  fromDerivationIndex: 1,
  toAddress: "0xhot",
  contract: null,
  amount: 1n,
  deductFee: true,
  sourceTxRefs: [],
  attempts: [],
  dependsOn: null,
  status: "PENDING",
  maxFee: null,
  ...o,
});
const done = (status: "CONFIRMED" | "FAILED" | "SKIPPED") => ({ attempt: 0, txHash: "", rawTx: "", nonce: null, fee: 0n, status });

function setup(execute: (o: TransferOrder, ctx: TransferRunContext) => Promise<void>) {
  const reports: TransferReport[] = [];
  const calls: string[] = [];
  const executor: TransferExecutor = {
    async execute(o, ctx) {
      calls.push(o.orderId);
      await execute(o, ctx);
    },
  };
  const runner = createTransferRunner({ logger }, {
    network: "testnet",
    executor,
    signal: ac.signal,
    report: async (r) => {
      reports.push(r);
    },
  });
  return { runner, reports, calls };
}

describe("transfer runner", () => {
  it("runs an order once however often it is re-sent, and not again after its final report", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { runner, reports, calls } = setup(async (o, ctx) => {
      await gate;
      await ctx.report({ orderId: o.orderId, attempt: done("CONFIRMED") });
    });
    runner.submit(order("a"));
    runner.submit(order("a", { status: "SIGNED" }));
    runner.submit(order("a"));
    expect(runner.running).toBe(1);
    release();
    await eventually(() => reports.length === 1);
    runner.submit(order("a", { status: "BROADCAST" }));
    await runner.drain();
    expect(calls).toEqual(["a"]);
    expect(runner.statusOf("a")).toBe("CONFIRMED");
  });

  it("holds an order whose dependency this term knows is not CONFIRMED, and starts it when it is", async () => {
    const confirm = new Map<string, () => void>();
    const { runner, calls } = setup(async (o, ctx) => {
      if (o.kind === "GAS_TOPUP") {
        await ctx.report({ orderId: o.orderId, attempt: { ...done("CONFIRMED"), status: "BROADCAST" } });
        await new Promise<void>((r) => confirm.set(o.orderId, r));
      }
      await ctx.report({ orderId: o.orderId, attempt: done("CONFIRMED") });
    });
    runner.submit(order("topup", { kind: "GAS_TOPUP" }));
    await eventually(() => runner.statusOf("topup") === "BROADCAST");
    runner.submit(order("sweep", { dependsOn: "topup" }));
    runner.submit(order("sweep", { dependsOn: "topup" }));
    // submit decides at once: only the top-up runs; the sweep (sent twice) is parked, not started.
    expect(runner.running).toBe(1);
    expect(calls).toEqual(["topup"]);
    confirm.get("topup")!();
    await eventually(() => runner.statusOf("sweep") === "CONFIRMED");
    expect(calls).toEqual(["topup", "sweep"]);

    // A dependency this term never saw: the coordinator vouches for it (it streams only then).
    runner.submit(order("sweep2", { dependsOn: "unknown-topup" }));
    await eventually(() => runner.statusOf("sweep2") === "CONFIRMED");
    // A dependency that failed here: the dependant is not executed.
    runner.submit(order("failed-topup", { status: "FAILED" }));
    runner.submit(order("sweep3", { dependsOn: "failed-topup" }));
    await runner.drain();
    expect(calls).not.toContain("sweep3");
  });

  it("resumes an execution that threw; gives up on a persistent unknown error until the order is sent again", async () => {
    let n = 0;
    const { runner, reports, calls } = setup(async (o, ctx) => {
      n++;
      if (o.orderId === "flaky" && n < 3) throw new RetryableError("UNAVAILABLE", "node down");
      if (o.orderId === "broken") throw new Error("bug");
      await ctx.report({ orderId: o.orderId, attempt: done("CONFIRMED") });
    });
    runner.submit(order("flaky"));
    await eventually(() => reports.some((r) => r.orderId === "flaky"), { timeout: 10_000 });
    expect(calls.filter((c) => c === "flaky")).toHaveLength(3);

    const r2 = createTransferRunner({ logger }, {
      network: "testnet",
      signal: ac.signal,
      maxUnknownFailures: 2,
      executor: { execute: async () => Promise.reject(new Error("bug")) },
      report: async () => undefined,
    });
    r2.submit(order("broken"));
    await eventually(() => r2.running === 0, { timeout: 5_000 });
    r2.submit(order("broken"));
    expect(r2.running).toBe(1);
  });

  it("stops an execution whose report says the lease is lost", async () => {
    let lost = "";
    const runner = createTransferRunner({ logger }, {
      network: "testnet",
      signal: ac.signal,
      onLeaseLost: (reason) => (lost = reason),
      executor: { execute: async (o, ctx) => ctx.report({ orderId: o.orderId, attempt: done("CONFIRMED") }) },
      report: async () => Promise.reject(new PonteError("LEASE_LOST", "epoch is stale")),
    });
    runner.submit(order("x"));
    await runner.drain();
    expect(lost).toMatch(/lease lost/);
    expect(runner.statusOf("x")).toBe("PENDING");
  });

  it("reports an unreadable order FAILED with the reason, sending nothing", async () => {
    const msg = fromTransferOrder({
      orderId: "bad",
      kind: agentv1.TransferKind.TRANSFER_KIND_SWEEP,
      tradeId: "",
      fromAddress: "0xfrom",
      fromDerivationIndex: 0,
      toAddress: "0xto",
      contract: "",
      amount: "12.5",
      deductFee: false,
      sourceTxRefs: [],
      attempts: [],
      dependsOnOrderId: "",
      status: agentv1.TransferStatus.TRANSFER_STATUS_PENDING,
      maxFee: "",
    });
    expect(msg).toEqual({ ok: false, orderId: "bad", reason: "malformed order: amount must be a decimal string of base units" });
    const { runner, reports, calls } = setup(async () => undefined);
    if (!msg.ok) runner.reject(msg.orderId, msg.reason);
    await runner.drain();
    expect(calls).toEqual([]);
    expect(reports).toEqual([{ orderId: "bad", attempt: done("FAILED"), reason: msg.ok ? "" : msg.reason }]);
  });
});
