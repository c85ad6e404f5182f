// B3's baseline: a bare loop over the window doing only what catch-up cannot avoid, with the
// agent's own decoding: per step of `step` blocks one JSON-RPC batch of getblockhash and one of
// getblock <hash> 2 (batches of `rpcBatch`, one request in flight, as the agent with
// rpc_batch_size = batch_size), the answer read with the agent's parseExact (amounts as exact
// text), each output's scriptPubKey attributed with the agent's script reader and looked up in a
// Set of the same watched addresses; a hit's amount converted with coinsToSats.
import { CHAINS, coinsToSats, createScriptReader, parseExact } from "@ponte/agent-bitcoin";
import { readFileSync } from "node:fs";
import { emitResult } from "../core/proc.js";

const [url, user, pass, fromS, toS, stepS, rpcBatchS, addressesFile] = process.argv.slice(2) as [string, string, string, string, string, string, string, string];
const from = Number(fromS);
const to = Number(toS);
const step = Number(stepS);
const rpcBatch = Number(rpcBatchS);
const watched = new Set<string>(JSON.parse(readFileSync(addressesFile, "utf8")) as string[]);
const readScript = createScriptReader(CHAINS["litecoin-regtest"], ["p2wpkh"]);
const auth = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;

interface Reply<T> {
  id: number;
  result: T;
  error: { code: number; message: string } | null;
}
interface Block {
  hash: string;
  height: number;
  previousblockhash?: string;
  tx: { txid: string; vout: { n: number; value: string; scriptPubKey: { hex: string } }[] }[];
}

async function batch<T>(calls: [string, unknown[]][]): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < calls.length; i += rpcBatch) {
    const chunk = calls.slice(i, i + rpcBatch);
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: auth },
      body: JSON.stringify(chunk.map(([method, params], id) => ({ jsonrpc: "1.0", id, method, params }))),
    });
    const replies = parseExact(await res.text()) as Reply<T>[];
    const byId = new Map(replies.map((r) => [r.id, r]));
    chunk.forEach(([method], id) => {
      const r = byId.get(id);
      if (!r || r.error) throw new Error(`${method}: ${r?.error?.message ?? "no answer"}`);
      out.push(r.result);
    });
  }
  return out;
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
let txs = 0;
let outputs = 0;
let deposits = 0;
let sats = 0n;
for (let start = from; start <= to; start += step) {
  const end = Math.min(to, start + step - 1);
  const heights: number[] = [];
  for (let h = start; h <= end; h++) heights.push(h);
  const hashes = await batch<string>(heights.map((h) => ["getblockhash", [h]]));
  const blocks = await batch<Block>(hashes.map((h) => ["getblock", [h, 2]]));
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i]!;
    if (b.height !== heights[i] || (i > 0 && b.previousblockhash !== blocks[i - 1]!.hash)) throw new Error(`block ${b.height} out of order`);
    for (const tx of b.tx) {
      txs++;
      for (const o of tx.vout) {
        outputs++;
        const a = readScript(o.scriptPubKey.hex);
        if (a !== null && watched.has(a)) {
          deposits++;
          sats += coinsToSats(o.value);
        }
      }
    }
  }
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
emitResult({ ms, blocks: to - from + 1, txs, outputs, deposits, sats, cpu_us: cpu.user + cpu.system });
