// A real litecoind regtest node for tests (see shared ENVIRONMENT.md): free ports, a temporary
// datadir, a wallet "w" funded by 101 mined blocks. Started in the foreground so stop()/kill()
// reach it; restart() brings it back on the same datadir and ports.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, freePort } from "@ponte/common/testing";

export const LITECOIND_BINARIES = ["/usr/lib/litecoin/litecoind", "/usr/lib/litecoind/litecoind"];
export const RPC_USER = "u";
export const RPC_PASSWORD = "p";

export function litecoindBinary(): string {
  const found = LITECOIND_BINARIES.find((b) => existsSync(b));
  if (!found) throw new Error(`litecoind not found (${LITECOIND_BINARIES.join(", ")}): apt-get install -y litecoind`);
  return found;
}

export interface Litecoind {
  readonly rpcPort: number;
  /** http://127.0.0.1:<port> (no credentials in it). */
  readonly url: string;
  readonly datadir: string;
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  /** Calls on the wallet "w". */
  wallet<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  /** Mines n blocks to a fresh wallet address (or to `to`); returns their hashes. */
  mine(n?: number, to?: string): Promise<string[]>;
  /** Pays each address its satoshis in one transaction; returns the txid. */
  pay(outputs: Record<string, bigint>): Promise<string>;
  height(): Promise<number>;
  /** Stops (SIGTERM, waits) and starts again on the same datadir and ports, wallet loaded. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export const satsToCoins = (s: bigint): string => `${s / 100_000_000n}.${(s % 100_000_000n).toString().padStart(8, "0")}`;

/** The cookie file a node started with { cookie: true } writes (rotated at each start). */
export const cookieFile = (node: Litecoind): string => join(node.datadir, "regtest", ".cookie");

export async function startLitecoind(o: { workQueue?: number; rpcThreads?: number; args?: string[]; cookie?: boolean } = {}): Promise<Litecoind> {
  const bin = litecoindBinary();
  const datadir = mkdtempSync(join(tmpdir(), "ponte-ltc-"));
  const rpcPort = await freePort();
  const p2pPort = await freePort();
  const url = `http://127.0.0.1:${rpcPort}`;
  const basic = (creds: string) => `Basic ${Buffer.from(creds).toString("base64")}`;
  // With { cookie: true } the node makes a new cookie at each start: read it for every call.
  const auth = () => (o.cookie ? basic(readFileSync(join(datadir, "regtest", ".cookie"), "utf8").trim()) : basic(`${RPC_USER}:${RPC_PASSWORD}`));
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  const args = [
    ...litecoindRegtestArgs({
      datadir, rpcPort, p2pPort, workQueue: o.workQueue, rpcThreads: o.rpcThreads,
      ...(o.cookie ? {} : { rpcUser: RPC_USER, rpcPassword: RPC_PASSWORD }),
    }),
    ...(o.args ?? []),
  ];

  async function call<T>(path: string, method: string, params: unknown[]): Promise<T> {
    // A node started with a tiny -rpcworkqueue refuses the tests' own calls too (HTTP 503): wait them out.
    for (let i = 0; ; i++) {
      try {
        return await callOnce<T>(path, method, params);
      } catch (err) {
        if (!(err instanceof Error && /HTTP 50[03]: Work queue depth exceeded/.test(err.message)) || i >= 500) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async function callOnce<T>(path: string, method: string, params: unknown[]): Promise<T> {
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: auth() },
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
  }

  async function boot(): Promise<void> {
    child = spawn(bin, args, { stdio: "ignore" });
    const c = child;
    exited = new Promise((r) => c.once("exit", r));
    await eventually(async () => (await call<number>("", "getblockcount", [])) >= 0, { timeout: 30_000, interval: 100, message: "litecoind did not start" });
  }

  await boot();
  await call("", "createwallet", ["w"]);
  const self: Litecoind = {
    rpcPort,
    url,
    datadir,
    rpc: (method, params = []) => call("", method, params),
    wallet: (method, params = []) => call("/wallet/w", method, params),
    async mine(n = 1, to) {
      const address = to ?? (await self.wallet<string>("getnewaddress", ["", "bech32"]));
      return call<string[]>("", "generatetoaddress", [n, address]);
    },
    async pay(outputs) {
      const amounts = Object.fromEntries(Object.entries(outputs).map(([a, s]) => [a, satsToCoins(s)]));
      return self.wallet<string>("sendmany", ["", amounts]);
    },
    height: () => call<number>("", "getblockcount", []),
    async restart() {
      await self.stop();
      await boot();
      await call("", "loadwallet", ["w"]);
    },
    async stop() {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child?.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
  await self.mine(101);
  return self;
}

/** Stops the node and removes its datadir. */
export async function closeLitecoind(node: Litecoind | undefined): Promise<void> {
  if (!node) return;
  await node.stop();
  rmSync(node.datadir, { recursive: true, force: true });
}

/**
 * The flags a litecoind regtest node needs to serve this agent, for startLitecoind() and for tools
 * that run their own node in the foreground (the local stack of `npm start`): RPC on
 * loopback only, no P2P listening, txindex and REST, a wallet fee fallback (regtest has no fee
 * estimates), BIP125 replacements (Litecoin Core refuses them by default; the agent's fee bumps
 * need them) and a work queue above the agent's max_in_flight. No -daemon: the caller supervises it.
 */
export function litecoindRegtestArgs(o: {
  datadir: string;
  rpcPort: number;
  /** Absent: the node writes a cookie file instead. */
  rpcUser?: string;
  rpcPassword?: string;
  p2pPort?: number;
  workQueue?: number;
  rpcThreads?: number;
  /** Node log to stdout instead of <datadir>/regtest/debug.log. */
  printToConsole?: boolean;
}): string[] {
  return [
    "-regtest",
    `-datadir=${o.datadir}`,
    ...(o.rpcUser === undefined ? [] : [`-rpcuser=${o.rpcUser}`, `-rpcpassword=${o.rpcPassword ?? ""}`]),
    "-rpcbind=127.0.0.1",
    "-rpcallowip=127.0.0.1",
    `-rpcport=${o.rpcPort}`,
    ...(o.p2pPort === undefined ? [] : [`-port=${o.p2pPort}`]),
    "-listen=0",
    "-server=1",
    ...(o.printToConsole ? ["-printtoconsole=1", "-nodebuglogfile"] : ["-printtoconsole=0"]),
    "-fallbackfee=0.0001",
    "-txindex=1",
    "-rest=1",
    "-mempoolreplacement=1",
    `-rpcworkqueue=${o.workQueue ?? 64}`,
    `-rpcthreads=${o.rpcThreads ?? 4}`,
  ];
}
