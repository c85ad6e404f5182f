// npm start then npm run demo, as a newcomer runs them: the whole stack from nothing (litecoind
// regtest included), a USDT and an LTC sale end to end, then SIGTERM and nothing left behind.
import { freePort } from "@ponte/common/testing";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findLitecoind } from "./services/litecoin.js";
import type { StackInfo } from "./state/index.js";
import { killStack, run, runToEnd, stackOf, survivors, tempStateDir, userEnv, type Running } from "./_test/run.js";

const state = tempStateDir();
let start: Running | undefined;
let children: StackInfo["children"] = [];

interface BankTransfers {
  transfers: { tags: string[]; status: string; amount: number; metadata: { authentication?: string } }[];
}
const json = async <T>(url: string, token?: string): Promise<T> =>
  (await (await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {})).json()) as T;
const tradeIdOf = (output: string): string => {
  const id = /Trade (trd_[0-9a-z]+) created/.exec(output)?.[1];
  if (!id) throw new Error(`the demo printed no trade id:\n${output}`);
  return id;
};

afterAll(async () => {
  await killStack(start, children);
  state.cleanup();
});

describe("npm start + npm run demo", () => {
  it("sells 100 USDT and 0.5 LTC end to end with one PIX payout each, shows a failed payout, then stops every child on SIGTERM", async () => {
    // Required here and in CI (.ci/run installs it): without it npm start runs with LTC off, which
    // faults.test.ts covers; this test would then prove nothing about LTC, so it fails instead.
    if (!findLitecoind()) throw new Error("litecoind is not installed (/usr/lib/litecoin/litecoind): apt-get install -y litecoind (.ci/run does)");
    const port = await freePort();
    start = run("start", ["--state-dir", state.dir, "--free-ports"], userEnv({ PORT: String(port) }));
    await start.waitForOutput("Ponte is running", 120_000);
    const info = stackOf(state.dir);
    children = info.children;
    expect(info.gatewayUrl).toBe(`http://127.0.0.1:${port}`);
    expect(children.map((c) => c.name)).toEqual(
      expect.arrayContaining(["postgres", "nats", "anvil", "litecoind", "starkbank-standin", "coordinator", "gateway", "agent-evm-anvil", "agent-bitcoin-litecoin-regtest"]),
    );
    expect(start.output()).toContain(`export PONTE_TOKEN=${info.tokens.user}`);
    expect(start.output()).not.toContain("LTC is off");
    expect(start.output()).toContain("Agents        anvil on; litecoin-regtest on");
    expect(info.litecoin).toMatchObject({ rpcUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), wallet: "demo", hotWallet: expect.stringMatching(/^rltc1q/) });
    expect(start.output()).toContain(`hot wallet ${info.litecoin!.hotWallet}`);

    // The USDT and LTC sales side by side, as two users of the desk would.
    const [demo, ltc] = await Promise.all([
      runToEnd("demo", ["--state-dir", state.dir], userEnv()),
      runToEnd("demo", ["--state-dir", state.dir, "--asset", "LTC", "--amount", "0.5"], userEnv()),
    ]);
    expect(demo.output).toContain("COMPLETED");
    expect(demo.output).toContain("end-to-end id");
    expect(demo.code, demo.output).toBe(0);

    // LTC: paid from litecoind's demo wallet, seen by the UTXO agent, 6 confirmations, swept to its hot wallet.
    expect(ltc.output).toContain("Paid 0.5 LTC from litecoind wallet \"demo\"");
    expect(ltc.output).toContain("confirmations 6/6");
    expect(ltc.output).toContain("COMPLETED");
    expect(ltc.output).toContain("end-to-end id");
    expect(ltc.output).toMatch(new RegExp(`SWEEP\\s+CONFIRMED rltc1\\S+ → ${info.litecoin!.hotWallet!.slice(0, 10)}`));
    expect(ltc.code, ltc.output).toBe(0);

    // Each trade as the API tells it, and the payouts the bank (stand-in) received for it: exactly one each.
    const bank = await json<BankTransfers>(`${info.starkbank.url}/_admin/transfers`);
    for (const [output, symbol] of [[demo.output, "USDT"], [ltc.output, "LTC"]] as const) {
      const tradeId = tradeIdOf(output);
      const trade = await json<{ status: string; symbol: string; payout_status: string; payout_end_to_end_id: string; fiat_amount: string }>(
        `${info.gatewayUrl}/api/v1/instant-trade/${tradeId}`,
        info.tokens.user,
      );
      expect(trade).toMatchObject({ status: "COMPLETED", payout_status: "SETTLED", symbol });
      const paid = bank.transfers.filter((t) => t.tags.includes(tradeId.toLowerCase()));
      expect(paid).toHaveLength(1);
      const [reais, centavos = ""] = trade.fiat_amount.split(".");
      expect(paid[0]).toMatchObject({ status: "success", amount: Number(BigInt(reais!) * 100n + BigInt(centavos.padEnd(2, "0"))) });
      expect(paid[0]!.metadata.authentication).toBe(trade.payout_end_to_end_id);
    }

    // The failure path: the bank rejects the PIX, the trade goes to review, nothing is paid.
    const failing = await runToEnd("demo", ["--state-dir", state.dir, "--fail-payout"], userEnv());
    expect(failing.code, failing.output).toBe(0);
    expect(failing.output).toContain("went to MANUAL_REVIEW");
    const failedId = tradeIdOf(failing.output);
    const after = await json<BankTransfers>(`${info.starkbank.url}/_admin/transfers`);
    expect(after.transfers.filter((t) => t.tags.includes(failedId.toLowerCase())).map((t) => t.status)).toEqual(["failed"]);

    start.proc.kill("SIGTERM");
    expect(await start.exited).toBe(0);
    expect(start.output()).toContain("nothing left running");
    expect(survivors(children)).toEqual([]);
    expect(existsSync(join(state.dir, "stack.json"))).toBe(false);
  });
});
