// npm start then npm run demo, as a newcomer runs them: the whole stack from nothing, one sale
// end to end, then SIGTERM and nothing left behind.
import { freePort } from "@ponte/common/testing";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { StackInfo } from "./state/index.js";
import { killStack, run, runToEnd, stackOf, survivors, tempStateDir, userEnv, type Running } from "./_test/run.js";

const state = tempStateDir();
let start: Running | undefined;
let children: StackInfo["children"] = [];

afterAll(async () => {
  await killStack(start, children);
  state.cleanup();
});

describe("npm start + npm run demo", () => {
  it("sells 100 USDT end to end with one PIX payout, shows a failed payout, then stops every child on SIGTERM", async () => {
    const port = await freePort();
    start = run("start", ["--state-dir", state.dir, "--free-ports"], userEnv({ PORT: String(port) }));
    await start.waitForOutput("Ponte is running", 120_000);
    const info = stackOf(state.dir);
    children = info.children;
    expect(info.gatewayUrl).toBe(`http://127.0.0.1:${port}`);
    expect(children.map((c) => c.name)).toEqual(
      expect.arrayContaining(["postgres", "nats", "anvil", "starkbank-standin", "coordinator", "gateway", "agent-evm-anvil"]),
    );
    expect(start.output()).toContain(`export PONTE_TOKEN=${info.tokens.user}`);
    expect(start.output()).toContain("LTC is off");

    const demo = await runToEnd("demo", ["--state-dir", state.dir], userEnv());
    expect(demo.output).toContain("COMPLETED");
    expect(demo.output).toContain("end-to-end id");
    expect(demo.code, demo.output).toBe(0);

    // The trade as the API tells it, and the payouts the bank (stand-in) received for it.
    const tradeId = /Trade (trd_[0-9a-z]+) created/.exec(demo.output)?.[1];
    expect(tradeId).toBeDefined();
    const trade = (await (await fetch(`${info.gatewayUrl}/api/v1/instant-trade/${tradeId}`, { headers: { authorization: `Bearer ${info.tokens.user}` } })).json()) as {
      status: string;
      payout_status: string;
      payout_end_to_end_id: string;
      fiat_amount: string;
    };
    expect(trade).toMatchObject({ status: "COMPLETED", payout_status: "SETTLED" });
    const bank = (await (await fetch(`${info.starkbank.url}/_admin/transfers`)).json()) as {
      transfers: { tags: string[]; status: string; amount: number; metadata: { authentication?: string } }[];
    };
    const paid = bank.transfers.filter((t) => t.tags.includes(tradeId!.toLowerCase()));
    expect(paid).toHaveLength(1);
    expect(paid[0]).toMatchObject({ status: "success", amount: Math.round(Number(trade.fiat_amount) * 100) });
    expect(paid[0]!.metadata.authentication).toBe(trade.payout_end_to_end_id);

    // The failure path: the bank rejects the PIX, the trade goes to review, nothing is paid.
    const failing = await runToEnd("demo", ["--state-dir", state.dir, "--fail-payout"], userEnv());
    expect(failing.code, failing.output).toBe(0);
    expect(failing.output).toContain("went to MANUAL_REVIEW");
    const failedId = /Trade (trd_[0-9a-z]+) created/.exec(failing.output)![1]!;
    const after = (await (await fetch(`${info.starkbank.url}/_admin/transfers`)).json()) as typeof bank;
    expect(after.transfers.filter((t) => t.tags.includes(failedId.toLowerCase())).map((t) => t.status)).toEqual(["failed"]);

    start.proc.kill("SIGTERM");
    expect(await start.exited).toBe(0);
    expect(start.output()).toContain("nothing left running");
    expect(survivors(children)).toEqual([]);
    expect(existsSync(join(state.dir, "stack.json"))).toBe(false);
  });
});
