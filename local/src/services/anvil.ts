// anvil with one-second blocks, its chain kept across restarts (--state), a demo USDT-like token
// and funded demo wallets.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Contract, ContractFactory, HDNodeWallet, JsonRpcProvider, Network, parseEther, parseUnits, Wallet } from "ethers";
import { TOKEN_ARTIFACT } from "../paths.js";
import type { DemoWallet } from "../state/index.js";
import type { Supervisor } from "../supervisor/index.js";

export const ANVIL_CHAIN_ID = 31337;

/** anvil's default accounts (mnemonic "test test … junk"): public keys for a public dev chain. */
const ANVIL_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
] as const;

export const DEMO_TOKEN = { symbol: "USDT", name: "Tether USD (demo)", decimals: 6 } as const;
/** Each demo wallet keeps at least this much USDT; more is minted when it runs low. */
const FUND_FLOOR = parseUnits("10000", DEMO_TOKEN.decimals);
const FUND_AMOUNT = parseUnits("1000000", DEMO_TOKEN.decimals);
/** The EVM agent's hot wallet pays the gas top-ups of token sweeps: keep it in ether. */
const HOT_FLOOR = parseEther("10");
const HOT_AMOUNT = parseEther("100");
/** Where the EVM agent derives its hot wallet (agents/evm/src/keys: EVM_HOT_WALLET_PATH). */
const EVM_HOT_WALLET_PATH = "m/44'/60'/1'/0/0";

/** The address of the EVM agent's hot wallet for this seed. */
export const hotWalletOf = (mnemonic: string): string => HDNodeWallet.fromPhrase(mnemonic, "", EVM_HOT_WALLET_PATH).address;

/** The platform binary itself, so signals reach anvil (the npm wrapper would be left in between). */
export function anvilBinary(): string | undefined {
  const require = createRequire(import.meta.url);
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  try {
    const bin = join(dirname(require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/package.json`)), "bin", "anvil");
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined; // no anvil build for this platform installed
  }
}

export function anvilProvider(url: string): JsonRpcProvider {
  // No call cache (stale nonces), no batching, fast polling: see shared/ENVIRONMENT.md.
  return new JsonRpcProvider(url, Network.from(ANVIL_CHAIN_ID), { staticNetwork: true, cacheTimeout: -1, batchMaxCount: 1, pollingInterval: 100 });
}

export async function startAnvil(
  sup: Supervisor,
  o: { bin: string; port: number; stateFile: string },
): Promise<{ rpcUrl: string; wsUrl: string }> {
  const child = sup.start({
    name: "anvil",
    cmd: o.bin,
    // --state loads the chain at start and dumps it at exit; --state-interval also dumps every
    // 10 s, so a crash loses seconds of chain, not the chain the database remembers.
    args: ["--host", "127.0.0.1", "--port", String(o.port), "--block-time", "1", "--chain-id", String(ANVIL_CHAIN_ID), "--state", o.stateFile, "--state-interval", "10"],
    env: process.env,
  });
  const rpcUrl = `http://127.0.0.1:${o.port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`anvil exited (${child.exitCode}):\n${child.tail.slice(-10).join("\n")}`);
    try {
      const res = await fetch(rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("anvil did not answer within 20 s");
    await sleep(50);
  }
  return { rpcUrl, wsUrl: `ws://127.0.0.1:${o.port}` };
}

interface ChainRecord {
  token: string;
}

/**
 * Deploys the demo token (or finds the one deployed on this persisted chain) and tops up the
 * demo wallets. Wallet 0 deploys and mints; wallets 1–3 are the demo's payers.
 */
export async function prepareChain(rpcUrl: string, chainFile: string, agentMnemonic: string): Promise<{ token: string; wallets: DemoWallet[]; hotWallet: string }> {
  const provider = anvilProvider(rpcUrl);
  try {
    const artifact = JSON.parse(readFileSync(TOKEN_ARTIFACT, "utf8")) as { abi: unknown[]; bytecode: string };
    const deployer = new Wallet(ANVIL_KEYS[0], provider);
    let address: string | undefined;
    if (existsSync(chainFile)) {
      const rec = JSON.parse(readFileSync(chainFile, "utf8")) as ChainRecord;
      if ((await provider.getCode(rec.token)) !== "0x") address = rec.token;
    }
    if (!address) {
      const c = await new ContractFactory(artifact.abi as never, artifact.bytecode, deployer).deploy(DEMO_TOKEN.name, DEMO_TOKEN.symbol, DEMO_TOKEN.decimals);
      await c.waitForDeployment();
      address = await c.getAddress();
      writeFileSync(chainFile, `${JSON.stringify({ token: address } satisfies ChainRecord, null, 2)}\n`);
    }
    const token = new Contract(address, artifact.abi as never, deployer);
    const wallets = ANVIL_KEYS.slice(1).map((k) => new Wallet(k, provider));
    let nonce = await provider.getTransactionCount(deployer.address, "pending");
    const sent = [];
    for (const w of wallets) {
      const balance = (await token.getFunction("balanceOf")(w.address)) as bigint;
      if (balance < FUND_FLOOR) sent.push(await token.getFunction("mint")(w.address, FUND_AMOUNT, { nonce: nonce++ }));
    }
    const hotWallet = hotWalletOf(agentMnemonic);
    if ((await provider.getBalance(hotWallet)) < HOT_FLOOR) sent.push(await deployer.sendTransaction({ to: hotWallet, value: HOT_AMOUNT, nonce: nonce++ }));
    await Promise.all(sent.map((tx: { wait: (n: number, t: number) => Promise<unknown> }) => tx.wait(1, 30_000)));
    return { token: address, hotWallet, wallets: wallets.map((w) => ({ address: w.address, privateKey: w.privateKey })) };
  } finally {
    provider.destroy();
  }
}
