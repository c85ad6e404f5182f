import { createLogger, createRegistry, PonteError } from "@ponte/common";
import { afterEach, describe, expect, it } from "vitest";
import { createCoordinatorClient } from "../client/index.js";
import { createAgentMetrics } from "../metrics/index.js";
import { startFakeCoordinator } from "../testing/index.js";
import type { ProcessedBlock } from "../types.js";
import { createReporter } from "./index.js";

const logger = createLogger({ name: "report-test", level: "silent" });
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
  const fake = await startFakeCoordinator();
  cleanups.push(() => fake.stop());
  fake.lease = { holder: "agent-r", epoch: 2n, ttlMs: 60_000, expiresAt: Date.now() + 60_000 };
  const client = createCoordinatorClient({ address: fake.address, logger, deadlineMs: 2_000 });
  cleanups.push(() => client.close());
  const registry = createRegistry("report-test");
  const metrics = createAgentMetrics(registry, "testnet");
  const lost: string[] = [];
  const ac = new AbortController();
  cleanups.push(() => ac.abort());
  const reporter = createReporter({ logger }, {
    client,
    metrics,
    identity: { network: "testnet", agentId: "agent-r", leaseEpoch: 2n },
    signal: ac.signal,
    onLeaseLost: (r) => lost.push(r),
  });
  return { fake, reporter, registry, lost };
}

describe("reporter", () => {
  it("reports blocks with decimal-string amounts and returns the coordinator's cursor", async () => {
    const { fake, reporter, registry } = await setup();
    const big = 2n ** 255n + 7n; // uint256-sized amounts survive as decimal strings
    const cursor = await reporter.report([block(1), block(2, [deposit("0xaa:native", big)]), block(3)], { height: 5n, hash: hash(5) }, 2n);
    expect(cursor).toEqual({ block: { height: 3n, hash: hash(3) }, finalizedHeight: 2n });
    const ob = fake.reports[0]!.blocks[1]!.observations[0]!;
    expect(ob).toMatchObject({ txRef: "0xaa:native", amount: big.toString(), confirmations: 4, blockHeight: 2n, blockHash: hash(2) });
    expect(fake.deposits.get("0xaa:native")?.status).toBe("confirmed");
    const text = await registry.metrics();
    expect(text).toMatch(/ponte_agent_deposits_total\{network="testnet",status="seen",component="report-test"\} 1/);
    expect(text).toMatch(/ponte_agent_deposits_total\{network="testnet",status="confirmed",component="report-test"\} 1/);
    expect(text).toMatch(/ponte_agent_processed_height\{network="testnet",component="report-test"\} 3/);
    expect(text).toMatch(/ponte_agent_head_lag_blocks\{network="testnet",component="report-test"\} 2/);
  });

  it("retries transient failures and counts them", async () => {
    const { fake, reporter, registry } = await setup();
    fake.failNext("ReportBlocks", 3);
    const cursor = await reporter.report([block(1)], { height: 1n, hash: hash(1) }, 0n);
    expect(cursor.block?.height).toBe(1n);
    expect(fake.reports).toHaveLength(1);
    expect(await registry.metrics()).toMatch(/ponte_agent_coordinator_retries_total\{network="testnet",method="ReportBlocks",component="report-test"\} 3/);
  });

  it("surfaces INVALID_STATE with the coordinator's cursor when blocks do not follow it", async () => {
    const { fake, reporter } = await setup();
    await reporter.report([block(1), block(2)], { height: 2n, hash: hash(2) }, 0n);
    const err = await reporter.report([block(4)], { height: 4n, hash: hash(4) }, 0n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PonteError);
    expect(err).toMatchObject({ code: "INVALID_STATE", details: { cursor_height: "2", cursor_hash: hash(2) } });
    expect(fake.reports).toHaveLength(1);
  });

  it("ends the term on LEASE_LOST", async () => {
    const { fake, reporter, lost } = await setup();
    fake.lease.epoch = 3n;
    await expect(reporter.report([block(1)], { height: 1n, hash: hash(1) }, 0n)).rejects.toMatchObject({ code: "LEASE_LOST" });
    expect(lost).toEqual(["ReportBlocks: lease lost"]);
  });

  it("reports a reorg and counts the orphaned deposits", async () => {
    const { fake, reporter, registry } = await setup();
    await reporter.report([block(1), block(2, [deposit("0xbb:3", 5n)])], { height: 2n, hash: hash(2) }, 0n);
    await reporter.reportReorg({ ancestor: { height: 1n, hash: hash(1) }, orphanedTxRefs: ["0xbb:3"], depth: 1 });
    expect(fake.cursor.block).toEqual({ height: 1n, hash: hash(1) });
    expect(fake.deposits.get("0xbb:3")?.status).toBe("reorged");
    expect(await registry.metrics()).toMatch(/ponte_agent_deposits_total\{network="testnet",status="reorged",component="report-test"\} 1/);
  });
});
