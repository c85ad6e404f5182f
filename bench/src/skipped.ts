import { skippedRow, type Benchmark } from "./core/result.js";

// Benchmarks whose product parts are not built yet: each prints its "not yet" row, so the table
// always lists the whole suite of shared/BENCHMARKS.md.
const notYet = (id: string, title: string, needs: string): Benchmark => ({
  id,
  title,
  run: async (ctx) => [skippedRow(id, `${id} ${title}`, needs, ctx.smoke ? "smoke" : "full")],
});

export const b3 = notYet("B3", "UTXO catch-up", "the UTXO agent (agents/bitcoin, issue 6)");
export const b6 = notYet("B6", "confirmation → PIX", "PIX payouts landed (issue 4) and a payout stand-in the bench can count duplicates on");
export const b7 = notYet("B7", "reorg handling", "PIX payouts landed (issue 4), to count payouts on orphaned deposits, and B5's agent p99 as its baseline");
