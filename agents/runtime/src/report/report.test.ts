import { createLogger, createRegistry, PonteError } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCoordinatorClient, toBlockReport } from "../client/index.js";
import { createAgentMetrics } from "../metrics/index.js";
import { blocksOf, cursorOf, depositOf, metricValue, registerAgent, startTestCoordinator, takeLease, uniqueNetwork, type TestCoordinator } from "../_test/coordinator.js";
import type { ProcessedBlock } from "../types.js";
import { createReporter } from "./index.js";

const logger = createLogger({ name: "report-test", level: "silent" });
// A lease that outlives each test (nothing renews it here), also across a coordinator restart.
let tc: TestCoordinator;
beforeAll(async () => {
  tc = await startTestCoordinator({ LEASE_TTL_MS: "60000" });
});
afterAll(async () => tc?.close());

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const hash = (n: number) => `0x${n.toString(16).padStart(64, "0")}`;
const block = (h: number, deposits: ProcessedBlock["deposits"] = []): ProcessedBlock => ({
  height: BigInt(h),
  hash: hash(h),
  parentHash: hash(h - 1),
  time: 1_700_000_000n + BigInt(h),
  deposits,
});
const deposit = (ref: string, amount: bigint) => ({ txRef: ref, txHash: ref.split(":")[0]!, address: "0xabc", contract: null, amount, from: "0xfrom" });

async function setup() {
  const network = uniqueNetwork();
  const identity = await registerAgent(tc.address, network, "agent-r");
  const client = createCoordinatorClient({ address: tc.address, logger, deadlineMs: 2_000 });
  cleanups.push(() => client.close());
  const registry = createRegistry("report-test");
  const metrics = createAgentMetrics(registry, network);
  const lost: string[] = [];
  const ac = new AbortController();
  cleanups.push(() => ac.abort());
  const reporter = createReporter({ logger }, { client, metrics, identity, signal: ac.signal, onLeaseLost: (r) => lost.push(r) });
  const heights = async () => (await blocksOf(tc.sql, network)).map((b) => Number(b.height));
  return { network, identity, reporter, registry, lost, heights };
}

describe("reporter (real coordinator)", () => {
  it("reports blocks with decimal-string amounts and returns the coordinator's cursor", async () => {
    const { network, reporter, registry, heights } = await setup();
    const big = 2n ** 255n + 7n; // uint256-sized amounts survive as decimal strings
    const blocks = [block(1), block(2, [deposit("0xaa:native", big)]), block(3)];
    const cursor = await reporter.report(blocks, { height: 5n, hash: hash(5) }, 2n);
    expect(cursor).toEqual({ block: { height: 3n, hash: hash(3) }, finalizedHeight: 2n });
    // On the wire: the amount as a decimal string, confirmations counted from the head.
    expect(toBlockReport(blocks[1]!, { height: 5n, hash: hash(5) }, 2n).observations[0]).toMatchObject({
      txRef: "0xaa:native",
      amount: big.toString(),
      confirmations: 4,
      blockHeight: 2n,
      blockHash: hash(2),
    });
    // Stored by the coordinator, final: its block is at the finalized height.
    expect(await depositOf(tc.sql, network, "0xaa:native")).toMatchObject({
      status: "CONFIRMED",
      amount: big.toString(),
      address: "0xabc",
      contract: "",
      tx_hash: "0xaa",
      block_height: 2n,
      block_hash: hash(2),
      from_address: "0xfrom",
    });
    expect(await heights()).toEqual([1, 2, 3]);
    expect(await cursorOf(tc.sql, network)).toMatchObject({ height: 3n, hash: hash(3), finalized_height: 2n });
    const text = await registry.metrics();
    expect(text).toMatch(/ponte_agent_deposits_total\{network="testnet-[\d-]+",status="seen",component="report-test"\} 1/);
    expect(text).toMatch(/ponte_agent_deposits_total\{network="testnet-[\d-]+",status="confirmed",component="report-test"\} 1/);
    expect(text).toMatch(/ponte_agent_processed_height\{network="testnet-[\d-]+",component="report-test"\} 3/);
    expect(text).toMatch(/ponte_agent_head_lag_blocks\{network="testnet-[\d-]+",component="report-test"\} 2/);
  });

  it("retries while the coordinator is unavailable and counts the retries", async () => {
    const { network, reporter, registry, heights } = await setup();
    await tc.stop();
    let reported: Promise<unknown>;
    try {
      reported = reporter.report([block(1)], { height: 1n, hash: hash(1) }, 0n);
      reported.catch(() => {});
      await eventually(async () => ((await metricValue(registry, "ponte_agent_coordinator_retries_total", { method: "ReportBlocks" })) ?? 0) >= 2, {
        timeout: 5_000,
      });
    } finally {
      await tc.start();
    }
    expect(await reported).toEqual({ block: { height: 1n, hash: hash(1) }, finalizedHeight: 0n });
    // Stored once.
    expect(await heights()).toEqual([1]);
    expect(await cursorOf(tc.sql, network)).toMatchObject({ height: 1n, hash: hash(1) });
  });

  it("surfaces INVALID_STATE with the coordinator's cursor when blocks do not follow it", async () => {
    const { network, reporter, heights } = await setup();
    await reporter.report([block(1), block(2)], { height: 2n, hash: hash(2) }, 0n);
    const err = await reporter.report([block(4)], { height: 4n, hash: hash(4) }, 0n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PonteError);
    expect(err).toMatchObject({ code: "INVALID_STATE", details: { cursor_height: "2", cursor_hash: hash(2) } });
    // Nothing of the refused report was stored.
    expect(await heights()).toEqual([1, 2]);
    expect(await cursorOf(tc.sql, network)).toMatchObject({ height: 2n, hash: hash(2) });
  });

  it("ends the term on LEASE_LOST", async () => {
    const { identity, reporter, lost, heights } = await setup();
    await takeLease(tc.address, identity, "agent-x");
    await expect(reporter.report([block(1)], { height: 1n, hash: hash(1) }, 0n)).rejects.toMatchObject({ code: "LEASE_LOST" });
    expect(lost).toEqual(["ReportBlocks: lease lost"]);
    expect(await heights()).toEqual([]);
  });

  it("reports a reorg: the coordinator rewinds its cursor and marks the orphaned deposits", async () => {
    const { network, reporter, registry, heights } = await setup();
    await reporter.report([block(1), block(2, [deposit("0xbb:3", 5n)])], { height: 2n, hash: hash(2) }, 0n);
    expect(await depositOf(tc.sql, network, "0xbb:3")).toMatchObject({ status: "SEEN", block_height: 2n });
    await reporter.reportReorg({ ancestor: { height: 1n, hash: hash(1) }, orphanedTxRefs: ["0xbb:3"], depth: 1 });
    expect(await cursorOf(tc.sql, network)).toMatchObject({ height: 1n, hash: hash(1) });
    expect(await heights()).toEqual([1]);
    expect(await depositOf(tc.sql, network, "0xbb:3")).toMatchObject({ status: "REORGED" });
    expect(await metricValue(registry, "ponte_agent_deposits_total", { status: "reorged" })).toBe(1);
    expect(await metricValue(registry, "ponte_agent_processed_height")).toBe(1);
  });
});
