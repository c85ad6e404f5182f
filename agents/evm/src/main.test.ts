import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startFakeCoordinator, type FakeCoordinator } from "@ponte/agent-runtime/testing";
import { eventually, startProcess, type RunningProcess } from "@ponte/common/testing";
import { parseEther, Wallet } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MNEMONIC, deployToken, mined, startAnvil, type Anvil } from "./_test/anvil.js";
import { startRpcProxy } from "./_test/proxy.js";

// The built entry point, as operators run it (turbo builds before testing).
const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, "..", "dist", "main.js");
const example = JSON.parse(readFileSync(join(here, "..", "config", "anvil.json"), "utf8")) as Record<string, unknown>;
const dir = mkdtempSync(join(tmpdir(), "ponte-evm-main-"));
const procs: RunningProcess[] = [];
afterEach(async () => {
  while (procs.length) await procs.pop()!.kill("SIGKILL");
});

function writeConfig(name: string, patch: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ ...example, ...patch }));
  return file;
}

async function run(env: Record<string, string | undefined>, readyLog?: string) {
  const p = await startProcess({ name: "agent-evm", entry, env: { LOG_LEVEL: "info", METRICS_PORT: "0", ...env }, readyLog });
  procs.push(p);
  return p;
}

describe("agent-evm main", () => {
  it("stops at start-up with an error naming the bad field, never printing the seed", async () => {
    const cases: [Record<string, unknown>, Record<string, string>, string][] = [
      [{ finality: "eventually" }, {}, 'finality: unknown finality rule: use "finalized" or {"confirmations": n}'],
      [{ rpc: [{ http: "localhost:8545" }] }, {}, "rpc.0.http: must be an http(s) URL"],
      [
        { tokens: [{ symbol: "USDT", contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals: 6 }, { symbol: "USDC", contract: "0x5fbdb2315678afecb367f032d93f642f64180aa3", decimals: 6 }] },
        {},
        "tokens.1.contract: duplicate token: same contract as tokens.0",
      ],
      [{}, { COORDINATOR_ADDR: "" }, "COORDINATOR_ADDR: must be host:port"],
    ];
    for (const [i, [patch, env, message]] of cases.entries()) {
      const file = writeConfig(`bad-${i}.json`, patch);
      const p = await run({ EVM_CONFIG: file, EVM_SEED_MNEMONIC: AGENT_MNEMONIC, COORDINATOR_ADDR: "127.0.0.1:1", ...env });
      await eventually(() => p.exitCode !== null, { timeout: 10_000 });
      expect(p.exitCode).toBe(1);
      const out = p.lines.join("\n");
      expect(out).toContain(message);
      expect(out).not.toContain("abandon");
    }
  }, 30_000);
});

describe("agent-evm process against anvil", () => {
  let anvil: Anvil;
  let fake: FakeCoordinator;
  beforeAll(async () => {
    anvil = await startAnvil();
    fake = await startFakeCoordinator({ leaseTtlMs: 1_000, target: 8, lowWater: 1 });
  }, 30_000);
  afterAll(async () => {
    await fake?.stop();
    await anvil?.stop();
  });

  it("finds every deposit exactly once when killed (SIGKILL) mid catch-up and restarted", async () => {
    const token = await deployToken(anvil.wallet(0), "USDT", 6);
    const tokenAddr = await token.getAddress();
    await mined(token.getFunction("mint")(anvil.wallet(0).address, 10n ** 12n));
    // The deposit addresses are the trades' (watched) ones; fund them over ~400 blocks.
    const addrs = Array.from({ length: 4 }, () => Wallet.createRandom().address);
    fake.watch(addrs.map((address, i) => ({ address, tradeId: `trd_${i}` })));
    const refs: string[] = [];
    for (let i = 0; i < 20; i++) {
      const to = addrs[i % addrs.length]!;
      if (i % 2 === 0) refs.push(`${(await mined(anvil.wallet(0).sendTransaction({ to, value: parseEther("0.001") }))).hash}:native`);
      else {
        const t = await mined(token.getFunction("transfer")(to, 1_000n + BigInt(i)));
        refs.push(`${t.hash}:${(await anvil.provider.getTransactionReceipt(t.hash))!.logs[0]!.index}`);
      }
      await anvil.mine(20);
    }
    const tip = await anvil.height();
    // A slow node, so the kill lands mid catch-up.
    const slow = await startRpcProxy(anvil.http, { delayMs: 15 });
    const file = writeConfig("kill.json", { rpc: [{ http: slow.url }], batch_size: 10, poll_interval_ms: 200 });
    const env = {
      EVM_CONFIG: file,
      EVM_SEED_MNEMONIC: AGENT_MNEMONIC,
      COORDINATOR_ADDR: fake.address,
      ASSET_CONTRACT_OVERRIDES: JSON.stringify({ "anvil:USDT": tokenAddr }),
    };
    try {
      const first = await run({ ...env, AGENT_ID: "agent-1" }, "Lease granted");
      await eventually(() => (fake.cursor.block?.height ?? 0n) > tip / 3n, { timeout: 20_000 });
      await first.kill("SIGKILL");
      const killedAt = fake.cursor.block!.height;
      expect(killedAt).toBeLessThan(tip);

      const second = await run({ ...env, AGENT_ID: "agent-2" }, "Lease granted");
      await eventually(() => fake.cursor.block?.height === tip, { timeout: 30_000 });
      for (const r of refs) expect(fake.deposits.get(r)?.reports, r).toBe(1);
      expect(fake.deposits.size).toBe(refs.length);
      expect(second.lines.join("\n")).not.toContain("abandon");
      await second.kill("SIGTERM");
      expect(second.lines.some((l) => l.includes("Lease released"))).toBe(true);
    } finally {
      await slow.stop();
    }
  }, 90_000);
});
