// litecoind regtest for the LTC agent: a supervised foreground node (never -daemon, so Ctrl-C
// stops it with the rest) whose chain lives in the state folder, a demo wallet with spendable
// coins, and a block every LTC_BLOCK_INTERVAL_MS (regtest mines only when asked).
import { accessSync, constants, existsSync, mkdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { LITECOIND_BINARIES, litecoindRegtestArgs, satsToCoins } from "@ponte/agent-bitcoin/testing";
import type { Supervisor } from "../supervisor/index.js";

export { satsToCoins };

/** The coordinator's network name for the local node (coordinator/assets/local.json). */
export const LTC_NETWORK = "litecoin-regtest";
export const LTC_DECIMALS = 8;
/** One block a second, like anvil: the coordinator wants 6 confirmations for LTC. */
export const LTC_BLOCK_INTERVAL_MS = 1_000;
/** The wallet in the node that pays the demo's deposits (and takes its refunds). */
export const DEMO_LTC_WALLET = "demo";
export const LTC_RPC_USER = "ponte";
/** Below this many spendable satoshis (1 LTC), start-up mines another 101 blocks to the demo wallet. */
const SPENDABLE_FLOOR = 100_000_000n;

/**
 * PONTE_LITECOIND when set (a path; one that is missing turns LTC off), else Debian's binary. The
 * /usr/bin/litecoind wrapper is not used: it writes a config into $HOME.
 */
export function findLitecoind(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = env.PONTE_LITECOIND ? [env.PONTE_LITECOIND] : LITECOIND_BINARIES;
  return candidates.find((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Coins ("0.5", "12.00000001") to satoshis; refuses more than 8 decimals rather than rounding. */
export function coinsToSats(s: string): bigint {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m || (m[2] ?? "").length > LTC_DECIMALS) throw new Error(`not an LTC amount: ${s}`);
  return BigInt(m[1]! + (m[2] ?? "").padEnd(LTC_DECIMALS, "0"));
}

/** An error the node answered with (its JSON-RPC error code, e.g. -18 wallet not found). */
export class LitecoinRpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
  ) {
    super(`litecoind ${method}: ${message} (${code})`);
    this.name = "LitecoinRpcError";
  }
}

export interface LitecoinRpc {
  readonly url: string;
  call<T = unknown>(method: string, params?: unknown[], o?: { wallet?: string }): Promise<T>;
  /** The result's JSON text as the node wrote it: amounts read from it stay exact. */
  callText(method: string, params?: unknown[], o?: { wallet?: string }): Promise<string>;
}

export function createLitecoinRpc(o: { url: string; user: string; password: string; timeoutMs?: number }): LitecoinRpc {
  const authorization = `Basic ${Buffer.from(`${o.user}:${o.password}`).toString("base64")}`;
  async function raw(method: string, params: unknown[], wallet?: string): Promise<string> {
    const res = await fetch(`${o.url}${wallet ? `/wallet/${encodeURIComponent(wallet)}` : ""}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization },
      body: JSON.stringify({ jsonrpc: "1.0", id: method, params, method }),
      signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
    });
    const text = await res.text();
    let body: { error?: { code: number; message: string } | null };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error(`litecoind ${method}: HTTP ${res.status} ${text.slice(0, 200)}`);
    }
    if (body.error) throw new LitecoinRpcError(method, body.error.code, body.error.message);
    return text;
  }
  return {
    url: o.url,
    async call<T>(method: string, params: unknown[] = [], c: { wallet?: string } = {}): Promise<T> {
      return (JSON.parse(await raw(method, params, c.wallet)) as { result: T }).result;
    },
    async callText(method, params = [], c = {}) {
      const text = await raw(method, params, c.wallet);
      const m = /^\s*\{\s*"result"\s*:\s*([\s\S]*?)\s*,\s*"error"\s*:\s*null\s*,\s*"id"[\s\S]*\}\s*$/.exec(text);
      if (!m) throw new Error(`litecoind ${method}: unexpected answer ${text.slice(0, 200)}`);
      return m[1]!;
    },
  };
}

/** The wallet's spendable (trusted) balance in satoshis, read from the node's text. */
export async function spendableSats(rpc: LitecoinRpc, wallet: string): Promise<bigint> {
  const text = await rpc.callText("getbalances", [], { wallet });
  const m = /"mine"\s*:\s*\{[^}]*?"trusted"\s*:\s*(\d+(?:\.\d+)?)/.exec(text);
  if (!m) throw new Error(`litecoind getbalances: no mine.trusted in ${text.slice(0, 200)}`);
  return coinsToSats(m[1]!);
}

/** Starts litecoind in the foreground under the supervisor and waits until its RPC answers. */
export async function startLitecoinNode(
  sup: Supervisor,
  o: { bin: string; port: number; datadir: string; password: string },
): Promise<{ rpc: LitecoinRpc; rpcUrl: string }> {
  mkdirSync(o.datadir, { recursive: true });
  const child = sup.start({
    name: "litecoind",
    cmd: o.bin,
    args: litecoindRegtestArgs({ datadir: o.datadir, rpcPort: o.port, rpcUser: LTC_RPC_USER, rpcPassword: o.password, printToConsole: true }),
    env: process.env,
    // It flushes its chain state and wallet on SIGTERM: give it time rather than a torn database.
    stopTimeoutMs: 30_000,
  });
  const rpcUrl = `http://127.0.0.1:${o.port}`;
  const rpc = createLitecoinRpc({ url: rpcUrl, user: LTC_RPC_USER, password: o.password, timeoutMs: 10_000 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`litecoind exited (${child.exitCode}):\n${child.tail.slice(-10).join("\n")}`);
    try {
      await rpc.call<number>("getblockcount");
      break;
    } catch (err) {
      // Not listening yet, or listening and still loading its chain (-28, "Loading block index…").
      if (err instanceof LitecoinRpcError && err.code !== -28) throw err;
    }
    if (Date.now() > deadline) throw new Error("litecoind did not answer within 60 s");
    await sleep(100);
  }
  return { rpc, rpcUrl };
}

/**
 * Loads the demo wallet (creating it on a new chain), picks the address blocks are mined to, and
 * mines until the wallet has coins to spend (coinbases mature after 100 blocks).
 */
export async function prepareLitecoin(rpc: LitecoinRpc): Promise<{ minerAddress: string; spendable: bigint; height: number }> {
  const loaded = await rpc.call<string[]>("listwallets");
  if (!loaded.includes(DEMO_LTC_WALLET)) {
    const onDisk = (await rpc.call<{ wallets: { name: string }[] }>("listwalletdir")).wallets.map((w) => w.name);
    if (onDisk.includes(DEMO_LTC_WALLET)) await rpc.call("loadwallet", [DEMO_LTC_WALLET]);
    else await rpc.call("createwallet", [DEMO_LTC_WALLET]);
  }
  const minerAddress = await rpc.call<string>("getnewaddress", ["mining", "bech32"], { wallet: DEMO_LTC_WALLET });
  let spendable = await spendableSats(rpc, DEMO_LTC_WALLET);
  for (let i = 0; i < 3 && spendable < SPENDABLE_FLOOR; i++) {
    await rpc.call("generatetoaddress", [101, minerAddress]);
    spendable = await spendableSats(rpc, DEMO_LTC_WALLET);
  }
  if (spendable < SPENDABLE_FLOOR) throw new Error(`the demo wallet has only ${satsToCoins(spendable)} LTC to spend after mining`);
  return { minerAddress, spendable, height: await rpc.call<number>("getblockcount") };
}

/**
 * Mines a block every intervalMs until stopped. A failed attempt is reported (once per streak)
 * and retried at the next tick; litecoind dying is the supervisor's to report.
 */
export function startMiner(
  rpc: LitecoinRpc,
  o: { address: string; intervalMs: number; stopped: () => boolean; onError: (err: unknown) => void },
): { stop(): Promise<void> } {
  let halt = false;
  const loop = (async () => {
    let failing = false;
    while (!halt && !o.stopped()) {
      const next = Date.now() + o.intervalMs;
      try {
        await rpc.call("generatetoaddress", [1, o.address]);
        failing = false;
      } catch (err) {
        if (!failing && !halt && !o.stopped()) o.onError(err);
        failing = true;
      }
      await sleep(Math.max(0, next - Date.now()), undefined, { ref: false });
    }
  })();
  return {
    async stop() {
      halt = true;
      await loop;
    },
  };
}

/** True when a datadir holds a regtest chain. */
export const hasChain = (datadir: string): boolean => existsSync(`${datadir}/regtest/blocks`);
