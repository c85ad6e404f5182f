import { Counter, Gauge, type Registry } from "@ponte/common";
import type { MempoolMetrics } from "../mempool/index.js";

/** What the UTXO family adds to the runtime's agent metrics: the mempool and fee rates. */
export interface UtxoMetrics extends MempoolMetrics {
  /** sat/vB of the node's estimate (or the fallback) and of what was signed. */
  setFeeRate(kind: "estimate" | "signed", satVb: bigint): void;
}

export function createUtxoMetrics(registry: Registry, network: string): UtxoMetrics {
  const mempoolDeposits = new Gauge({ name: "ponte_agent_mempool_deposits", help: "Unconfirmed deposits followed in the mempool", labelNames: ["network"], registers: [registry] });
  const mempoolEvents = new Counter({ name: "ponte_agent_mempool_deposits_total", help: "Unconfirmed deposits reported seen, or dropped (replaced/evicted)", labelNames: ["network", "event"], registers: [registry] });
  const feeRate = new Gauge({ name: "ponte_agent_fee_rate_sat_per_vbyte", help: "Fee rate: the node's estimate (with floor/fallback) and the last one signed", labelNames: ["network", "kind"], registers: [registry] });
  for (const event of ["seen", "dropped"]) mempoolEvents.inc({ network, event }, 0);
  mempoolDeposits.set({ network }, 0);
  return {
    setMempoolDeposits: (n) => mempoolDeposits.set({ network }, n),
    mempoolEvent: (event, n) => {
      if (n > 0) mempoolEvents.inc({ network, event }, n);
    },
    setFeeRate: (kind, v) => feeRate.set({ network, kind }, Number(v)),
  };
}
