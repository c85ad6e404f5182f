// Unconfirmed deposits: the mempool is polled (getrawmempool, then only the new transactions),
// outputs to watched addresses are reported as SEEN with their RBF flag, and a reported
// transaction that leaves the mempool without being mined (replaced, evicted, expired) is
// reported as dropped, so the coordinator moves the trade back.
import type { MempoolDeposit, WatchView } from "@ponte/agent-runtime";
import type { Logger } from "@ponte/common";
import { coinsToSats, type UtxoRpc } from "../rpc/index.js";
import type { RpcTx, RpcTxOut } from "../rpc/types.js";
import type { ScriptReader } from "../follow/blocks.js";

/** A transaction is checked against the watch set again for this long after it was first seen (a trade's address may arrive late). */
const RECHECK_MS = 30_000;
const FINAL_SEQUENCE = 0xfffffffe;
const MAX_SUPPRESSED = 200_000;

interface Candidate {
  n: number;
  address: string;
  value: string;
}

export interface MempoolMetrics {
  setMempoolDeposits(n: number): void;
  mempoolEvent(event: "seen" | "dropped", n: number): void;
}

export interface MempoolTracker {
  /** One poll: new deposits and dropped ones, already reported when report() resolves. */
  poll(): Promise<{ seen: number; dropped: number }>;
  /**
   * Transactions the follower found in blocks, and the deposits it reported from them: no longer
   * unconfirmed. Those deposits are never reported from the mempool again by this process (after
   * a reorg the coordinator would keep their old block height, see README "Known gaps"); they
   * come back when a block of the new chain has them.
   */
  mined(txids: Iterable<string>, depositRefs?: Iterable<string>): void;
  /**
   * Deposits a reorg orphaned. They are not reported from the mempool again by this process:
   * the coordinator would keep their old block height (see README, "Known gaps"); they come back
   * when a block of the new chain has them.
   */
  orphaned(txRefs: Iterable<string>): void;
  /** Unconfirmed deposits being followed. */
  readonly tracked: number;
}

export function createMempoolTracker(
  common: { logger: Logger },
  o: {
    rpc: UtxoRpc;
    watch: WatchView;
    readScript: ScriptReader;
    report: (deposits: MempoolDeposit[], dropped: string[]) => Promise<number>;
    metrics?: MempoolMetrics;
  },
): MempoolTracker {
  const { rpc } = o;
  const logger = common.logger.child({ component: "mempool" });
  let prev = new Set<string>();
  let generation = -1;
  /** txid → refs reported from the mempool and not yet seen in a block. */
  const tracked = new Map<string, string[]>();
  const suppressed = new Set<string>();
  // Bounded: the oldest go first (by then far below any reorg this agent handles).
  const suppress = (ref: string) => {
    suppressed.delete(ref);
    suppressed.add(ref);
    if (suppressed.size > MAX_SUPPRESSED) suppressed.delete(suppressed.values().next().value!);
  };
  /** Recently seen transactions' creditable outputs, re-checked while a late watch upsert may arrive. */
  let recent: { at: number; txid: string; rbf: boolean | null; outs: Candidate[] }[] = [];

  const setGauge = () => o.metrics?.setMempoolDeposits([...tracked.values()].reduce((s, r) => s + r.length, 0));

  async function fetchNew(ids: string[]): Promise<RpcTx[]> {
    if (ids.length === 0) return [];
    const rs = await rpc.batch<RpcTx>(ids.map((id) => ({ method: "getrawtransaction", params: [id, true] })));
    // -5: it left the mempool between the two calls; the block (or nothing) will tell.
    return rs.flatMap((r) => (r.ok ? [r.result] : []));
  }

  async function replaceable(txids: string[], txs: Map<string, RpcTx>): Promise<Map<string, boolean>> {
    const out = new Map<string, boolean>();
    if (txids.length === 0) return out;
    const rs = await rpc.batch<{ "bip125-replaceable"?: boolean }>(txids.map((id) => ({ method: "getmempoolentry", params: [id] })));
    txids.forEach((id, i) => {
      const r = rs[i];
      const flag = r?.ok ? r.result["bip125-replaceable"] : undefined;
      // Signalled by the transaction itself when the node does not say (or it just left).
      out.set(id, flag ?? (txs.get(id)?.vin.some((v) => v.sequence < FINAL_SEQUENCE) ?? true));
    });
    return out;
  }

  /** Gone from the mempool: mined (its output is in the UTXO set) or dropped. */
  async function droppedAmong(gone: string[]): Promise<string[]> {
    if (gone.length === 0) return [];
    const reqs = gone.map((id) => {
      const [, vout] = tracked.get(id)![0]!.split(":");
      return { method: "gettxout", params: [id, Number(vout), true] };
    });
    const rs = await rpc.batchOrThrow<RpcTxOut | null>(reqs);
    const out: string[] = [];
    gone.forEach((id, i) => {
      if (rs[i] === null) out.push(...tracked.get(id)!);
    });
    return out;
  }

  return {
    get tracked() {
      return tracked.size;
    },
    mined(txids, depositRefs = []) {
      for (const r of depositRefs) suppress(r);
      let changed = false;
      for (const id of txids) changed = tracked.delete(id) || changed;
      if (changed) setGauge();
    },
    orphaned(refs) {
      for (const r of refs) suppress(r);
    },
    async poll() {
      if (o.watch.generation !== generation) {
        // A new snapshot of the watch set: look at the whole mempool again.
        generation = o.watch.generation;
        prev = new Set();
      }
      const ids = await rpc.call<string[]>("getrawmempool", [false]);
      const cur = new Set(ids);
      const fresh = ids.filter((id) => !prev.has(id));
      const txs = await fetchNew(fresh);
      const now = Date.now();
      for (const tx of txs) {
        const outs: Candidate[] = [];
        for (const v of tx.vout) {
          const address = o.readScript(v.scriptPubKey.hex);
          if (address !== null) outs.push({ n: v.n, address, value: v.value });
        }
        if (outs.length) recent.push({ at: now, txid: tx.txid, rbf: null, outs });
      }
      recent = recent.filter((r) => now - r.at <= RECHECK_MS && cur.has(r.txid));

      const found: { txid: string; deposits: Omit<MempoolDeposit, "rbf">[] }[] = [];
      for (const r of recent) {
        const reported = new Set(tracked.get(r.txid) ?? []);
        const deposits = r.outs.flatMap((c) => {
          const entry = o.watch.get(c.address);
          const txRef = `${r.txid}:${c.n}`;
          if (!entry || entry.contract !== null || reported.has(txRef) || suppressed.has(txRef)) return [];
          return [{ txRef, txHash: r.txid, address: entry.address, contract: null, amount: coinsToSats(c.value), from: null }];
        });
        if (deposits.length) found.push({ txid: r.txid, deposits });
      }
      const txById = new Map(txs.map((t) => [t.txid, t]));
      const rbf = await replaceable(
        found.map((f) => f.txid),
        txById,
      );
      const deposits: MempoolDeposit[] = found.flatMap((f) => f.deposits.map((d) => ({ ...d, rbf: rbf.get(f.txid) ?? true })));
      const gone = [...tracked.keys()].filter((id) => !cur.has(id));
      const dropped = await droppedAmong(gone);

      if (deposits.length || dropped.length) await o.report(deposits, dropped);
      // Forgotten only once the coordinator has the report: a failed one is made again.
      for (const id of gone) tracked.delete(id);
      if (deposits.length || dropped.length) {
        for (const d of deposits) {
          const refs = tracked.get(d.txHash) ?? [];
          refs.push(d.txRef);
          tracked.set(d.txHash, refs);
          logger.info({ tx_ref: d.txRef, address: d.address, amount: d.amount.toString(), rbf: d.rbf }, "Unconfirmed deposit reported");
        }
        for (const ref of dropped) logger.warn({ tx_ref: ref }, "Unconfirmed deposit left the mempool unmined (replaced or evicted); reported dropped");
        o.metrics?.mempoolEvent("seen", deposits.length);
        o.metrics?.mempoolEvent("dropped", dropped.length);
        setGauge();
      }
      prev = cur;
      return { seen: deposits.length, dropped: dropped.length };
    },
  };
}
