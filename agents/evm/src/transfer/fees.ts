// EIP-1559 fees from the node, under the configured cap, and the bump a replacement needs.
import type { EvmRpc } from "../rpc/index.js";

export interface Fees {
  /** The next block's base fee (the last entry of eth_feeHistory). */
  baseFee: bigint;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

interface FeeHistory {
  baseFeePerGas: string[];
  reward?: string[][];
}

/**
 * maxFeePerGas = 2 × next base fee + tip: room for six full blocks of base-fee growth
 * (+12.5 % each) before the transaction stops being includable. The tip is the node's
 * eth_maxPriorityFeePerGas, else the median tip of the last blocks. Both are capped:
 * maxFee at `cap`, the tip at maxFee.
 */
export async function readFees(rpc: EvmRpc, cap: bigint): Promise<Fees> {
  const [history, tip] = await rpc.batch([
    { method: "eth_feeHistory", params: ["0x5", "latest", [50]] },
    { method: "eth_maxPriorityFeePerGas", params: [] },
  ]);
  if (!history!.ok) throw history!.error;
  const h = history!.result as FeeHistory;
  const last = h.baseFeePerGas.at(-1);
  const baseFee = last === undefined ? 0n : BigInt(last);
  let priority: bigint;
  if (tip!.ok) priority = BigInt(tip!.result as string);
  else {
    // Nodes without eth_maxPriorityFeePerGas: the median of the recent 50th-percentile tips.
    const tips = (h.reward ?? []).map((r) => BigInt(r[0] ?? "0x0")).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    priority = tips[Math.floor(tips.length / 2)] ?? 0n;
  }
  return capFees({ baseFee, maxFeePerGas: 2n * baseFee + priority, maxPriorityFeePerGas: priority }, cap);
}

export function capFees(f: Fees, cap: bigint): Fees {
  const maxFeePerGas = f.maxFeePerGas > cap ? cap : f.maxFeePerGas;
  const maxPriorityFeePerGas = f.maxPriorityFeePerGas > maxFeePerGas ? maxFeePerGas : f.maxPriorityFeePerGas;
  return { baseFee: f.baseFee, maxFeePerGas, maxPriorityFeePerGas };
}

/** +12.5 %, rounded up: above geth's 10 % replacement threshold on both fields, as nodes require. */
export const bump = (x: bigint): bigint => (x * 9n + 7n) / 8n;

/**
 * The fees of a replacement: each field at least +12.5 % over the stuck transaction's, and at
 * least what the node asks for now. null when that would exceed the cap: a capped transfer
 * waits for fees to come down rather than paying more than the operator allowed.
 */
export function replacementFees(prev: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }, now: Fees, cap: bigint): Fees | null {
  const maxFeePerGas = max(bump(prev.maxFeePerGas), now.maxFeePerGas);
  let maxPriorityFeePerGas = max(bump(prev.maxPriorityFeePerGas), now.maxPriorityFeePerGas);
  if (maxFeePerGas > cap) return null;
  if (maxPriorityFeePerGas > maxFeePerGas) maxPriorityFeePerGas = maxFeePerGas;
  return { baseFee: now.baseFee, maxFeePerGas, maxPriorityFeePerGas };
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);
