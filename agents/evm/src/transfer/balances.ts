// The hot wallet's balances as metrics (ponte_agent_wallet_balance{network, asset}). Whole units
// as a float are fine for a dashboard; nothing reads money back from a metric.
import type { AgentMetrics } from "@ponte/agent-runtime";
import { delay, type Logger } from "@ponte/common";
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

export function createBalanceMonitor(
  common: { logger: Logger },
  o: { rpc: EvmRpc; address: string; tokens: TokenConfig[]; metrics: AgentMetrics; intervalMs: number; network: string },
): BalanceMonitor {
  const logger = common.logger.child({ network: o.network, component: "balances" });
  const ac = new AbortController();
  let failing = false;
  const refresh = async () => {
    const results = await o.rpc.batch([
      { method: "eth_getBalance", params: [o.address, "latest"] },
      ...o.tokens.map((t) => ({ method: "eth_call", params: [{ to: t.contract, data: ERC20.encodeFunctionData("balanceOf", [o.address]) }, "latest"] })),
    ]);
    const [native, ...tokens] = results;
    if (native!.ok) o.metrics.setWalletBalance(NATIVE_ASSET_LABEL, Number(formatUnits(BigInt(native!.result as string), 18)));
    tokens.forEach((r, i) => {
      const t = o.tokens[i]!;
      // A token contract that is not there (a placeholder address) answers "0x": skip it.
      if (r.ok && typeof r.result === "string" && r.result.length > 2) o.metrics.setWalletBalance(t.symbol, Number(formatUnits(BigInt(r.result), t.decimals)));
    });
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
