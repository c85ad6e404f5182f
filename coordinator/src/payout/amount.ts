import { quoteBrl, settle, type Tolerance } from "@ponte/common";
import type { Trade } from "../trade/model.js";

/**
 * What a confirmed trade pays, in centavos, at its locked terms (DESIGN.md §5):
 * settle(confirmed) when the deposits are final. When an admin confirmed the payment without a
 * final deposit (an override with a reason), the basis is what was received, else the quoted
 * amount; an admin override of a shortfall pays what was received, at the locked rate.
 */
export function payoutAmount(trade: Trade, tolerance: Tolerance): bigint {
  const basis = trade.confirmedAmount > 0n ? trade.confirmedAmount : trade.receivedAmount > 0n ? trade.receivedAmount : trade.cryptoAmount;
  const terms = { decimals: trade.decimals, price: trade.price, spreadBps: trade.spreadBps, networkFeeBps: trade.networkFeeBps };
  const s = settle(basis, trade.cryptoAmount, terms, tolerance);
  return s.kind === "UNDERPAID" ? quoteBrl(basis, terms) : s.payCentavos;
}
