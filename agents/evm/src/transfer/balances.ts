// The hot wallet's balances as metrics (ponte_agent_wallet_balance{network, asset}). Whole units
// as a float are fine for a dashboard; nothing reads money back from a metric.
import type { AgentMetrics } from "@ponte/agent-runtime";
import { childLogger, delay, type Logger } from "@ponte/common";
import { formatUnits } from "ethers";
import type { TokenConfig } from "../config/index.js";
import type { EvmRpc } from "../rpc/index.js";
import { ERC20 } from "./erc20.js";

/** The label of the network's own coin: configs name tokens only. */
export const NATIVE_ASSET_LABEL = "native";

export interface BalanceMonitor {
  /** Reads every balance once and sets the gauges. */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

export interface BalanceReading {
  blockHeight: bigint;
  /** contract "" for the native coin; base units. */
  balances: { address: string; contract: string; balance: bigint }[];
}

export function createBalanceMonitor(
  common: { logger: Logger },
  o: {
    rpc: EvmRpc;
    address: string;
    tokens: TokenConfig[];
    metrics: AgentMetrics;
    intervalMs: number;
    network: string;
    /** Each reading, all at one block (the coordinator plans rebalances from it). */
    report?: (r: BalanceReading) => Promise<unknown>;
  },
): BalanceMonitor {
  const logger = childLogger(common.logger, { network: o.network, component: "balances" });
  const ac = new AbortController();
  let failing = false;
  const refresh = async () => {
    // Every balance at one block, so that a reading is consistent and can be ordered.
    const height = BigInt(await o.rpc.call<string>("eth_blockNumber", []));
    const tag = `0x${height.toString(16)}`;
    const results = await o.rpc.batch([
      { method: "eth_getBalance", params: [o.address, tag] },
      ...o.tokens.map((t) => ({ method: "eth_call", params: [{ to: t.contract, data: ERC20.encodeFunctionData("balanceOf", [o.address]) }, tag] })),
    ]);
    const [native, ...tokens] = results;
    const reading: BalanceReading = { blockHeight: height, balances: [] };
    if (native!.ok) {
      const wei = BigInt(native!.result as string);
      o.metrics.setWalletBalance(NATIVE_ASSET_LABEL, Number(formatUnits(wei, 18)));
      reading.balances.push({ address: o.address, contract: "", balance: wei });
    }
    tokens.forEach((r, i) => {
      const t = o.tokens[i]!;
      // A token contract that is not there (a placeholder address) answers "0x": skip it.
      if (r.ok && typeof r.result === "string" && r.result.length > 2) {
        const units = BigInt(r.result);
        o.metrics.setWalletBalance(t.symbol, Number(formatUnits(units, t.decimals)));
        reading.balances.push({ address: o.address, contract: t.contract.toLowerCase(), balance: units });
      }
    });
    if (o.report && reading.balances.length > 0) await o.report(reading);
  };
  const loop = (async () => {
    while (!ac.signal.aborted) {
      try {
        await refresh();
        if (failing) logger.info("Hot wallet balances readable again");
        failing = false;
      } catch (err) {
        // Metrics only: log the first failure of a streak, not every interval.
        if (!failing && !ac.signal.aborted) logger.warn({ err }, "Could not read the hot wallet's balances");
        failing = true;
      }
      await delay(o.intervalMs, ac.signal);
    }
  })();
  return {
    refresh,
    async stop() {
      ac.abort();
      await loop;
    },
  };
}
