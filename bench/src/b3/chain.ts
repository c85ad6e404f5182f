import { CHAINS, createScriptReader, createUtxoDeriver } from "@ponte/agent-bitcoin";
import { litecoindBinary, litecoindRegtestArgs } from "@ponte/agent-bitcoin/testing";
import { parseSeedMaterial } from "@ponte/agent-runtime/keys";
import { freePort } from "@ponte/common/testing";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startChild, type Child } from "../core/proc.js";

// B3's chain: a litecoind regtest datadir with a funded wallet, then `blocks` blocks each holding
// one wallet `sendmany` of `outputsPerBlock` outputs, `depositsPerBlock` of them to the agent's
// own deposit addresses (m/84'/1'/0'/0/i of AGENT_MNEMONIC, i = 0, 1, … in chain order), the rest
// to random P2WPKH addresses nobody watches. Built once and kept (the whole datadir) under the
// bench cache, keyed by the parameters and FORMAT. A full run starts litecoind on that datadir
// (it only reads; the mempool is not persisted); a smoke run on a copy of its small one (a smoke
// run inside `npm test` may run beside another).

export const NETWORK = "litecoin-regtest";
export const CHAIN = CHAINS["litecoin-regtest"];
/** The agent's seed in the bench (the well-known BIP39 test vector; not the node wallet's). */
export const AGENT_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
export const DEPOSIT_SATS = 1_000_000n; // 0.01 LTC per deposit (min 0.001 in the registry)
const OTHER_SATS = 10_000n; // 0.0001 LTC per unwatched output (above dust)
export const RPC_USER = "u";
export const RPC_PASSWORD = "p";
const FORMAT = 2;

export interface ChainParams {
  blocks: number;
  outputsPerBlock: number;
  depositsPerBlock: number;
}

export interface ChainMeta {
  params: ChainParams;
  /** Height of the first sendmany block (the catch-up window starts here) and the head. */
  first: number;
  head: number;
  /** Deposits, in chain order: derivation index = position. */
  deposits: { index: number; address: string; amount: string; block: number }[];
  datadir: string;
}

const readScript = createScriptReader(CHAIN, ["p2wpkh"]);
/** A P2WPKH regtest address of a 20-byte hash derived from `label` (nobody holds its key). */
export const hashAddress = (label: string): string => {
  const a = readScript(`0014${createHash("sha256").update(label).digest("hex").slice(0, 40)}`);
  if (!a) throw new Error("could not build a P2WPKH address");
  return a;
};
/** The i-th unpaid watched address (flat string). */
export const fillerAddress = (i: number): string => hashAddress(`b3-watched-${i}`);

export function agentDeriver() {
  return createUtxoDeriver(parseSeedMaterial(AGENT_MNEMONIC, {}).seed, CHAIN);
}

const coins = (s: bigint): string => `${s / 100_000_000n}.${(s % 100_000_000n).toString().padStart(8, "0")}`;

/**
 * Besides the agent's flags: no mempool.dat (the cached datadir stays as built), and MWEB never
 * activating. Litecoin Core 0.21.2 activates MWEB on regtest at height 432, after which
 * generatetoaddress fails ("TestBlockValidity failed: bad-txns-vin-empty": the first HogEx needs a
 * peg-in); the chain needs ~600 blocks, and MWEB outputs are not what the agent reads anyway.
 * Build and bench runs use the same rules (litecoind re-checks the last blocks at start).
 */
const EXTRA_ARGS = ["-persistmempool=0", "-vbparams=mweb:0:0:1000000000:1000000001"];

export interface LtcNode {
  url: string;
  datadir: string;
  rpc<T = unknown>(method: string, params?: unknown[], path?: string): Promise<T>;
  stop(): Promise<void>;
}

/** litecoind regtest on `datadir` (the agent's flags: txindex, REST, work queue 64), foreground. */
export async function startNode(o: { datadir: string; logDir: string }): Promise<LtcNode> {
  mkdirSync(o.datadir, { recursive: true });
  const rpcPort = await freePort();
  const p2pPort = await freePort();
  const url = `http://127.0.0.1:${rpcPort}`;
  const child: Child = await startChild({
    name: "b3-litecoind",
    cmd: litecoindBinary(),
    args: [...litecoindRegtestArgs({ datadir: o.datadir, rpcPort, p2pPort, rpcUser: RPC_USER, rpcPassword: RPC_PASSWORD }), ...EXTRA_ARGS],
    logDir: o.logDir,
  });
  const auth = `Basic ${Buffer.from(`${RPC_USER}:${RPC_PASSWORD}`).toString("base64")}`;
  const rpc = async <T>(method: string, params: unknown[] = [], path = ""): Promise<T> => {
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: auth },
      body: JSON.stringify({ jsonrpc: "1.0", id: 0, method, params }),
    });
    const text = await res.text();
    let body: { result: T; error: { code: number; message: string } | null };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error(`${method}: HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    if (body.error) throw new Error(`${method}: ${body.error.message} (${body.error.code})`);
    return body.result;
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await rpc<number>("getblockcount");
      break;
    } catch (err) {
      if (child.exitCode !== null) throw new Error(`litecoind exited (${child.exitCode}); log ${child.logFile} / ${o.datadir}/regtest/debug.log`);
      if (Date.now() > deadline) throw new Error(`litecoind did not start: ${(err as Error).message}`);
      await sleep(100);
    }
  }
  return { url, datadir: o.datadir, rpc, stop: async () => void (await child.kill("SIGTERM")) };
}

/**
 * The chain for `params`: from the cache when it is there, else built (into a directory of this
 * process, renamed into place when done, so two runs building at once do not share a datadir).
 */
export async function loadOrBuildChain(o: { params: ChainParams; cacheDir: string; logDir: string; log: (m: string) => void }): Promise<ChainMeta> {
  const key = createHash("sha256").update(JSON.stringify({ ...o.params, FORMAT })).digest("hex").slice(0, 12);
  const dir = join(o.cacheDir, "b3");
  mkdirSync(dir, { recursive: true });
  const metaFile = join(dir, `chain-${key}.meta.json`);
  const datadir = join(dir, `chain-${key}`);
  if (existsSync(metaFile) && existsSync(join(datadir, "regtest"))) return { ...(JSON.parse(readFileSync(metaFile, "utf8")) as ChainMeta), datadir };
  const building = join(dir, `chain-${key}.building-${process.pid}`);
  rmSync(building, { recursive: true, force: true });
  const t0 = Date.now();
  o.log(`B3: building the chain (${o.params.blocks} blocks × ${o.params.outputsPerBlock} outputs); cached for later runs`);
  const node = await startNode({ datadir: building, logDir: o.logDir });
  let meta: ChainMeta;
  try {
    meta = { ...(await build(node, o.params, (m) => o.log(`B3: ${m} (${((Date.now() - t0) / 1000).toFixed(0)} s)`))), datadir };
    await node.rpc("unloadwallet", ["w"]);
  } finally {
    await node.stop();
  }
  rmSync(datadir, { recursive: true, force: true });
  renameSync(building, datadir);
  writeFileSync(`${metaFile}.${process.pid}.tmp`, JSON.stringify(meta));
  renameSync(`${metaFile}.${process.pid}.tmp`, metaFile);
  o.log(`B3: chain built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return meta;
}

async function build(node: LtcNode, p: ChainParams, log: (m: string) => void): Promise<Omit<ChainMeta, "datadir">> {
  if (p.depositsPerBlock > p.outputsPerBlock) throw new Error("more deposits than outputs per block");
  await node.rpc("createwallet", ["w"]);
  const wallet = <T>(method: string, params: unknown[] = []) => node.rpc<T>(method, params, "/wallet/w");
  const miner = await wallet<string>("getnewaddress", ["", "bech32"]);
  // 101 blocks make the first coinbase spendable; each later block matures one more (50 LTC,
  // halving every 150 blocks on regtest): far more than the ~0.12 LTC a block spends.
  await node.rpc("generatetoaddress", [101, miner]);
  const deriver = agentDeriver();
  const deposits: ChainMeta["deposits"] = [];
  let height = await node.rpc<number>("getblockcount");
  const first = height + 1;
  for (let b = 0; b < p.blocks; b++) {
    const amounts: Record<string, string> = {};
    // Deposits spread over the outputs (positions 0, k, 2k, …) so they are not all first.
    const every = Math.max(1, Math.floor(p.outputsPerBlock / Math.max(1, p.depositsPerBlock)));
    let paid = 0;
    for (let i = 0; i < p.outputsPerBlock; i++) {
      if (paid < p.depositsPerBlock && i % every === 0) {
        const d = deriver.derive(deposits.length + paid);
        amounts[d.address] = coins(DEPOSIT_SATS);
        paid++;
      } else {
        amounts[hashAddress(`b3-other-${b}-${i}`)] = coins(OTHER_SATS);
      }
    }
    await wallet<string>("sendmany", ["", amounts]);
    await node.rpc("generatetoaddress", [1, miner]);
    height++;
    for (let j = 0; j < paid; j++) {
      const index = deposits.length;
      deposits.push({ index, address: deriver.derive(index).address, amount: DEPOSIT_SATS.toString(), block: height });
    }
    if ((b + 1) % 100 === 0) log(`${b + 1}/${p.blocks} blocks`);
  }
  const head = await node.rpc<number>("getblockcount");
  if (head !== height) throw new Error(`built ${head} blocks, expected ${height}`);
  const last = await node.rpc<{ tx: { vout: unknown[] }[] }>("getblock", [await node.rpc<string>("getblockhash", [head]), 2]);
  const outs = last.tx.reduce((n, t) => n + t.vout.length, 0);
  if (last.tx.length !== 2 || outs < p.outputsPerBlock) throw new Error(`the last block has ${last.tx.length} txs and ${outs} outputs`);
  return { params: p, first, head, deposits };
}
