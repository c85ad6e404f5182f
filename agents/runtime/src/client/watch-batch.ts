import type { agentv1 } from "@ponte/proto";
import type { WatchColumns } from "../types.js";

const NO_WATCH_BATCH: WatchColumns = { address: [], contracts: [], contract: [], watchUntilMs: [], derivationIndex: [] };

/** The batch as it came, once its columns are checked to line up (a bad one fails the stream). */
export function fromWatchBatch(b: agentv1.WatchBatch | undefined): WatchColumns {
  if (!b) return NO_WATCH_BATCH;
  const n = b.address.length;
  if (b.contract.length !== n || b.watchUntilMs.length !== n || b.derivationIndex.length !== n) {
    throw new Error("watch batch: its columns differ in length");
  }
  for (const c of b.contract) {
    if (c < -1 || c >= b.contracts.length) throw new Error("watch batch: contract index out of range");
  }
  return b;
}
