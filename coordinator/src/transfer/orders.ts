import { newId } from "@ponte/common";
import type { Sql, Tx } from "../db/index.js";
import type { CoordinatorMetrics } from "../metrics.js";

export type TransferKind = "SWEEP" | "REFUND" | "CUSTODIAL_SELL" | "REBALANCE" | "GAS_TOPUP";
export type TransferStatus = "PENDING" | "SIGNED" | "BROADCAST" | "CONFIRMED" | "FAILED" | "SKIPPED";
/** What a refund gives back (REFUND orders), else "trade": the order moves the trade's funds. */
export type TransferPurpose = "trade" | "excess" | "late_deposit" | "rebalance";

export interface NewOrder {
  network: string;
  kind: TransferKind;
  tradeId: string | null;
  from: string;
  to: string;
  contract: string;
  amount: bigint;
  deductFee: boolean;
  purpose?: TransferPurpose;
  dependsOn?: string;
  sourceTxRefs?: string[];
  maxFee?: bigint;
  reason?: string;
}

/** One order row, PENDING; the agent is woken by NOTIFY ponte_transfers once the caller commits. */
export async function insertOrder(tx: Tx, metrics: CoordinatorMetrics, o: NewOrder): Promise<string> {
  const id = newId("order");
  await tx`INSERT INTO transfer_transactions (id, network, kind, trade_id, status, from_address, to_address, contract, amount,
                                              deduct_fee, depends_on, source_tx_refs, max_fee, reason, purpose)
           VALUES (${id}, ${o.network}, ${o.kind}, ${o.tradeId}, 'PENDING', ${o.from}, ${o.to}, ${o.contract},
                   ${o.amount.toString()}, ${o.deductFee}, ${o.dependsOn ?? null}, ${o.sourceTxRefs ?? []},
                   ${o.maxFee === undefined ? null : o.maxFee.toString()}, ${o.reason ?? null}, ${o.purpose ?? "trade"})`;
  metrics.transfers.inc({ kind: o.kind, status: "PENDING" });
  return id;
}

export async function hotWallet(db: Sql | Tx, network: string): Promise<string | undefined> {
  const [w] = await db<{ address: string }[]>`SELECT address FROM system_wallets WHERE network = ${network} AND kind = 'hot'`;
  return w?.address;
}

/**
 * Orders a move of `amount` out of an address the agent derives (a deposit address or a custodial
 * wallet). A token needs gas there first: a GAS_TOPUP from the hot wallet, which the move waits for.
 */
export async function orderFromUserAddress(
  tx: Tx,
  metrics: CoordinatorMetrics,
  o: Omit<NewOrder, "deductFee" | "dependsOn"> & { hot: string },
): Promise<string> {
  let dependsOn: string | undefined;
  if (o.contract) {
    dependsOn = await insertOrder(tx, metrics, {
      network: o.network, kind: "GAS_TOPUP", tradeId: o.tradeId, from: o.hot, to: o.from, contract: o.contract,
      amount: 0n, deductFee: false, reason: `gas for the ${o.kind.toLowerCase().replace("_", " ")}`,
    });
  }
  // A native move pays its own fee out of the amount, except a custodial sell: the user sells the
  // quoted amount and the fee comes from the rest of their wallet.
  return insertOrder(tx, metrics, {
    network: o.network, kind: o.kind, tradeId: o.tradeId, from: o.from, to: o.to, contract: o.contract, amount: o.amount,
    deductFee: !o.contract && o.kind !== "CUSTODIAL_SELL", purpose: o.purpose, dependsOn, sourceTxRefs: o.sourceTxRefs,
    maxFee: o.maxFee, reason: o.reason,
  });
}
