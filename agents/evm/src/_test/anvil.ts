import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { canConnect, eventually, freePort } from "@ponte/common/testing";
import { Contract, ContractFactory, JsonRpcProvider, Network, Wallet, type TransactionResponse } from "ethers";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

/** anvil's default dev mnemonic: its accounts are pre-funded. */
export const ANVIL_MNEMONIC = "test test test test test test test test test test test junk";
export const ANVIL_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
];
/** Another mnemonic for the agent's deposit addresses, so they are not the funded dev accounts. */
export const AGENT_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

function anvilBinary(): { cmd: string; args: string[] } {
  // The platform binary itself, so a kill reaches anvil (the npm wrapper would leave it running).
  try {
    const pkg = require.resolve(`@foundry-rs/anvil-${process.platform}-${process.arch === "x64" ? "amd64" : process.arch}/package.json`);
    const bin = join(dirname(pkg), "bin", "anvil");
    if (existsSync(bin)) return { cmd: bin, args: [] };
  } catch {
    // fall through to the wrapper
  }
  return { cmd: process.execPath, args: [require.resolve("@foundry-rs/anvil/bin.mjs")] };
}

export interface Anvil {
  port: number;
  http: string;
  ws: string;
  provider: JsonRpcProvider;
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  mine(blocks?: number): Promise<void>;
  height(): Promise<bigint>;
  wallet(i?: number): Wallet;
  stop(): Promise<void>;
}

export async function startAnvil(opts: { args?: string[] } = {}): Promise<Anvil> {
  const port = await freePort();
  const { cmd, args } = anvilBinary();
  const child: ChildProcess = spawn(cmd, [...args, "--host", "127.0.0.1", "--port", String(port), "--silent", ...(opts.args ?? [])], { stdio: "ignore" });
  await eventually(() => canConnect("127.0.0.1", port), { timeout: 10_000, message: "anvil did not start" });
  const http = `http://127.0.0.1:${port}`;
  // Pitfalls from ENVIRONMENT.md: no call cache (stale nonces), no default batching, fast polling.
  const provider = new JsonRpcProvider(http, Network.from(31337), { staticNetwork: true, cacheTimeout: -1, batchMaxCount: 1, pollingInterval: 50 });
  const self: Anvil = {
    port,
    http,
    ws: `ws://127.0.0.1:${port}`,
    provider,
    rpc: <T>(method: string, params: unknown[] = []) => provider.send(method, params) as Promise<T>,
    async mine(blocks = 1) {
      await provider.send("anvil_mine", [`0x${blocks.toString(16)}`]);
    },
    async height() {
      return BigInt(await provider.send("eth_blockNumber", []));
    },
    wallet: (i = 0) => new Wallet(ANVIL_KEYS[i]!, provider),
    async stop() {
      provider.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
  return self;
}

interface Artifact {
  abi: unknown[];
  bytecode: string;
}
const artifact = (name: string): Artifact => JSON.parse(readFileSync(join(here, "..", "..", "test-contracts", `${name}.json`), "utf8")) as Artifact;

export async function deployToken(signer: Wallet, symbol = "USDT", decimals = 6): Promise<Contract> {
  const a = artifact("TestToken");
  const c = await new ContractFactory(a.abi as never, a.bytecode, signer).deploy(`Test ${symbol}`, symbol, decimals);
  await c.waitForDeployment();
  return c as Contract;
}

export async function deployRejecter(signer: Wallet): Promise<string> {
  const a = artifact("Rejecter");
  const c = await new ContractFactory(a.abi as never, a.bytecode, signer).deploy();
  await c.waitForDeployment();
  return c.getAddress();
}

/** Sends and waits for inclusion (automine). */
export async function mined(tx: Promise<TransactionResponse>): Promise<{ hash: string; blockNumber: bigint; status: number }> {
  const t = await tx;
  const r = await t.wait(1, 10_000);
  if (!r) throw new Error("no receipt");
  return { hash: t.hash.toLowerCase(), blockNumber: BigInt(r.blockNumber), status: r.status ?? 1 };
}
