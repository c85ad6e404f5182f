import type { FeeSettings } from "../config/index.js";
import { coinsToSats, type UtxoRpc } from "../rpc/index.js";

/** vbytes of a P2WPKH input with its witness (a 72-byte signature at most), rounded up. */
export const P2WPKH_INPUT_VBYTES = 68n;
/** version, locktime, counts, segwit marker and flag, rounded up. */
export const TX_OVERHEAD_VBYTES = 11n;
export const outputVbytes = (scriptLength: number): bigint => BigInt(8 + 1 + scriptLength);

/** An upper bound of the virtual size of a P2WPKH-input transaction with these output scripts. */
export function estimateVsize(inputs: number, outputScriptLengths: number[]): bigint {
  return TX_OVERHEAD_VBYTES + P2WPKH_INPUT_VBYTES * BigInt(inputs) + outputScriptLengths.reduce((s, n) => s + outputVbytes(n), 0n);
}

const clamp = (v: bigint, lo: bigint, hi: bigint) => (v < lo ? lo : v > hi ? hi : v);

/**
 * sat/vB from estimatesmartfee (BTC or LTC per kvB), never below the floor nor above the cap;
 * the fallback when the node has no estimate (regtest, a node that just started).
 */
export async function feeRate(rpc: UtxoRpc, s: FeeSettings): Promise<{ satVb: bigint; source: "estimate" | "fallback" }> {
  const r = await rpc.call<{ feerate?: string; errors?: string[] }>("estimatesmartfee", [s.confTarget]);
  if (r.feerate === undefined) return { satVb: clamp(s.fallbackSatVb, s.floorSatVb, s.maxSatVb), source: "fallback" };
  const perKvb = coinsToSats(r.feerate);
  return { satVb: clamp((perKvb + 999n) / 1000n, s.floorSatVb, s.maxSatVb), source: "estimate" };
}

/** BIP125: a replacement pays a higher rate and at least the old fee plus the relay increment on its own size. */
export function replacementRate(prev: bigint, estimate: bigint, max: bigint): bigint | null {
  const bumped = prev + (prev / 4n > 1n ? prev / 4n : 1n) + 1n;
  const rate = estimate > bumped ? estimate : bumped;
  return rate > max ? null : rate;
}
