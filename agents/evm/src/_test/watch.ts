import type { WatchEntry, WatchView } from "@ponte/agent-runtime";

/** A fixed watch set for processor tests. */
export function staticWatch(entries: { address: string; contract?: string }[]): WatchView {
  const map = new Map<string, WatchEntry>(
    entries.map((e) => [e.address.toLowerCase(), { address: e.address, contract: e.contract ?? null, watchUntil: null, derivationIndex: 0 }]),
  );
  return {
    get: (a) => map.get(a.toLowerCase()),
    get size() {
      return map.size;
    },
    synced: true,
    generation: 1,
    waitSynced: async () => {},
  };
}
