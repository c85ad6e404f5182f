import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Interface } from "ethers";
import { startAnvilNode, type AnvilNode } from "../infra/anvil.js";
import { TEST_TOKEN } from "../infra/paths.js";

// B2's chain: `blocks` blocks of `txsPerBlock` transactions (half native, half ERC-20 transfers
// over 3 tokens), one per block to a watched address (2 % of 50). Built once with batched
// eth_sendTransaction + anvil_mine, dumped, and reloaded with --load-state on later runs.

export interface ChainParams {
  blocks: number;
  txsPerBlock: number;
  watched: number;
}

export interface ChainMeta {
  params: ChainParams;
  /** Token contracts, lower case: USDT, USDC, DAI (6 decimals each). */
  tokens: { symbol: string; contract: string }[];
  head: number;
  /** Deposits to watched addresses: watched index → asset. */
  deposits: { index: number; symbol: string; contract: string; amount: string; block: number }[];
  stateFile: string;
}

export const TOKEN_SYMBOLS = ["USDT", "USDC", "DAI"];
export const NATIVE_DEPOSIT = 10_000_000_000_000_000n; // 0.01 ETH
export const TOKEN_DEPOSIT = 100_000_000n; // 100 units, 6 decimals
const FORMAT = 1;

/** The i-th watched address (flat string, lower case). */
export const watchedAddress = (i: number): string => `0x${createHash("sha256").update(`b2-watched-${i}`).digest("hex").slice(0, 40)}`;
const otherAddress = (b: number, i: number): string => `0x${createHash("sha256").update(`b2-other-${b}-${i}`).digest("hex").slice(0, 40)}`;

export async function loadOrBuildChain(o: { params: ChainParams; cacheDir: string; logDir: string; log: (m: string) => void; cache: boolean }): Promise<ChainMeta> {
  const key = createHash("sha256").update(JSON.stringify({ ...o.params, FORMAT })).digest("hex").slice(0, 12);
  const dir = join(o.cacheDir, "b2");
  mkdirSync(dir, { recursive: true });
  const metaFile = join(dir, `chain-${key}.meta.json`);
  if (o.cache && existsSync(metaFile)) {
    const meta = JSON.parse(readFileSync(metaFile, "utf8")) as ChainMeta;
    if (existsSync(meta.stateFile)) return meta;
  }
  const stateFile = join(dir, `chain-${key}.state.json`);
  const t0 = Date.now();
  o.log(`B2: building the chain (${o.params.blocks} blocks × ${o.params.txsPerBlock} txs)${o.cache ? "; cached for later runs" : ""}`);
  const anvil = await startAnvilNode({ args: ["--no-mining", "--prune-history"], logDir: o.logDir });
  try {
    const meta = await build(anvil, o.params, (m) => o.log(`B2: ${m} (${((Date.now() - t0) / 1000).toFixed(0)} s)`));
    const hex = await anvil.rpc<string>("anvil_dumpState");
    writeFileSync(`${stateFile}.tmp`, gunzipSync(Buffer.from(hex.slice(2), "hex")));
    renameSync(`${stateFile}.tmp`, stateFile);
    const full: ChainMeta = { ...meta, stateFile };
    writeFileSync(metaFile, JSON.stringify(full));
    o.log(`B2: chain built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    return full;
  } finally {
    await anvil.stop();
  }
}

async function build(anvil: AnvilNode, p: ChainParams, log: (m: string) => void): Promise<Omit<ChainMeta, "stateFile">> {
  const artifact = JSON.parse(readFileSync(TEST_TOKEN, "utf8")) as { abi: unknown[]; bytecode: string };
  const token = new Interface(artifact.abi as never);
  const accounts = await anvil.rpc<string[]>("eth_accounts");
  const senders = accounts.slice(0, 10);
  const nonces = new Map<string, number>();
  for (const a of senders) nonces.set(a, Number(BigInt(await anvil.rpc<string>("eth_getTransactionCount", [a, "pending"]))));
  const tx = (from: string, fields: Record<string, string>) => {
    const n = nonces.get(from)!;
    nonces.set(from, n + 1);
    return ["eth_sendTransaction", [{ from, nonce: `0x${n.toString(16)}`, ...fields }]] as [string, unknown[]];
  };
  const mine = () => anvil.rpc("anvil_mine", ["0x1"]);

  // Block 1: the three tokens. Block 2: every sender gets a balance of each.
  const deployer = senders[0]!;
  const hashes = await anvil.batch<string>(
    TOKEN_SYMBOLS.map((s) => tx(deployer, { data: artifact.bytecode + token.encodeDeploy([`Bench ${s}`, s, 6]).slice(2), gas: "0x2dc6c0" })),
  );
  await mine();
  const receipts = await anvil.batch<{ contractAddress: string; status: string }>(hashes.map((h) => ["eth_getTransactionReceipt", [h]]));
  const tokens = receipts.map((r, i) => {
    if (r.status !== "0x1") throw new Error("token deployment failed");
    return { symbol: TOKEN_SYMBOLS[i]!, contract: r.contractAddress.toLowerCase() };
  });
  const mints: [string, unknown[]][] = [];
  for (const t of tokens) for (const s of senders) mints.push(tx(deployer, { to: t.contract, data: token.encodeFunctionData("mint", [s, 10n ** 18n]), gas: "0x186a0" }));
  await anvil.batch(mints);
  await mine();

  const deposits: ChainMeta["deposits"] = [];
  let height = 2;
  for (let b = 0; b < p.blocks; b++) {
    height++;
    const calls: [string, unknown[]][] = [];
    const depositIsToken = b % 2 === 1;
    const nativeCount = Math.ceil(p.txsPerBlock / 2);
    for (let i = 0; i < p.txsPerBlock; i++) {
      const from = senders[(b * p.txsPerBlock + i) % senders.length]!;
      const deposit = i === 0 && deposits.length < p.watched;
      const isNative = deposit ? !depositIsToken : i - 1 < nativeCount - (depositIsToken ? 0 : 1);
      const to = deposit ? watchedAddress(deposits.length) : otherAddress(b, i);
      if (isNative) {
        const value = deposit ? NATIVE_DEPOSIT : BigInt(1_000 + i);
        calls.push(tx(from, { to, value: `0x${value.toString(16)}`, gas: "0x5208" }));
        if (deposit) deposits.push({ index: deposits.length, symbol: "ETH", contract: "", amount: value.toString(), block: height });
      } else {
        const t = tokens[(b + i) % tokens.length]!;
        const amount = deposit ? TOKEN_DEPOSIT : BigInt(1 + i);
        calls.push(tx(from, { to: t.contract, data: token.encodeFunctionData("transfer", [to, amount]), gas: "0x11170" }));
        if (deposit) deposits.push({ index: deposits.length, symbol: t.symbol, contract: t.contract, amount: amount.toString(), block: height });
      }
    }
    await anvil.batch(calls);
    await mine();
    if ((b + 1) % 200 === 0) log(`${b + 1}/${p.blocks} blocks`);
  }
  const head = Number(BigInt(await anvil.rpc<string>("eth_blockNumber")));
  if (head !== height) throw new Error(`built ${head} blocks, expected ${height}`);
  const last = await anvil.rpc<{ transactions: string[] }>("eth_getBlockByNumber", [`0x${head.toString(16)}`, false]);
  if (last.transactions.length !== p.txsPerBlock) throw new Error(`the last block has ${last.transactions.length} transactions, not ${p.txsPerBlock}`);
  return { params: p, tokens, head, deposits };
}
