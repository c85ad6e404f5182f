import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { eventually, startProcess, type RunningProcess } from "@ponte/common/testing";
import { HDNodeWallet, parseEther, type Contract } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MNEMONIC, deployToken, mined, startAnvil, type Anvil } from "./_test/anvil.js";
import { createTrade, cursorHeight, deposits, leaseOf, NETWORK, startTestCoordinator, stockPool, tradeStatus, type TestCoordinator } from "./_test/coordinator.js";
import { startRpcProxy } from "@ponte/common/testing";
import { createEvmDeriver } from "./derive/index.js";

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

async function run(env: Record<string, string | undefined>, readyLog?: string, args: string[] = []) {
  const p = await startProcess({ name: "agent-evm", entry, args, env: { LOG_LEVEL: "info", METRICS_PORT: "0", SEED_SOURCE: "env", ...env }, readyLog });
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
      expect(out).not.toContain("abandon abandon");
    }
  }, 30_000);
});

describe("agent-evm custodial-address", () => {
  it("prints the custodial wallets at the asked indexes from the agent's own seed, without starting", async () => {
    const p = await run(
      { EVM_CONFIG: writeConfig("custodial.json", {}), EVM_SEED_MNEMONIC: AGENT_MNEMONIC, COORDINATOR_ADDR: "127.0.0.1:1" },
      undefined,
      ["custodial-address", "--index", "5", "--count", "2"],
    );
    await eventually(() => p.exitCode !== null, { timeout: 10_000 });
    expect(p.exitCode).toBe(0);
    const lines = p.lines.filter((l) => l.startsWith("{\"network\"")).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([5, 6].map((i) => ({
      network: "anvil", derivation_index: i, path: `m/44'/60'/2'/0/${i}`,
      address: HDNodeWallet.fromPhrase(AGENT_MNEMONIC, undefined, `m/44'/60'/2'/0/${i}`).address,
    })));
    const bad = await run({ EVM_CONFIG: writeConfig("custodial.json", {}), EVM_SEED_MNEMONIC: AGENT_MNEMONIC, COORDINATOR_ADDR: "127.0.0.1:1" }, undefined, [
      "custodial-address", "--index", "-1",
    ]);
    await eventually(() => bad.exitCode !== null, { timeout: 10_000 });
    expect(bad.exitCode).toBe(2);
    expect(bad.lines.join("\n")).toContain("usage: ponte-agent-evm custodial-address");
  }, 30_000);
});

describe("agent-evm process against anvil (real coordinator)", () => {
  let anvil: Anvil;
  let token: Contract;
  let tokenAddr: string;
  let tc: TestCoordinator;
  beforeAll(async () => {
    anvil = await startAnvil();
    token = await deployToken(anvil.wallet(0), "USDT", 6);
    tokenAddr = (await token.getAddress()).toLowerCase();
    tc = await startTestCoordinator({
      ASSET_CONTRACT_OVERRIDES: JSON.stringify({ "anvil:USDT": tokenAddr }),
      LEASE_TTL_MS: "1000",
      ADDRESS_POOL_TARGET: "8",
      ADDRESS_POOL_LOW_WATER: "1",
    });
  }, 30_000);
  afterAll(async () => {
    await tc?.close();
    await anvil?.stop();
  });

  it("finds every deposit exactly once when killed (SIGKILL) mid catch-up and restarted", async () => {
    await mined(token.getFunction("mint")(anvil.wallet(0).address, 10n ** 12n));
    // Four sales on the agent's own first addresses (stored by an earlier run of it), funded over
    // ~220 blocks, one deposit every 11 (at most one per 10-block batch). Each sale stays short of
    // its amount (DEPOSIT_DETECTED), so the coordinator orders no sweep or refund that would put
    // transactions of the agent's own on the chain.
    const deriver = createEvmDeriver(AGENT_MNEMONIC);
    await stockPool(tc.address, [0, 1, 2, 3].map((i) => deriver.derive(i)));
    const trades = [];
    for (let i = 0; i < 4; i++) {
      trades.push(await (i % 2 === 0 ? createTrade(tc.sql, { symbol: "ETH", amount: parseEther("1") }) : createTrade(tc.sql, { symbol: "USDT", amount: 10n ** 9n, contract: tokenAddr })));
    }
    const addrs = trades.map((t) => t.address);
    const refs: string[] = [];
    for (let i = 0; i < 20; i++) {
      const to = addrs[i % addrs.length]!;
      if (i % 2 === 0) refs.push(`${(await mined(anvil.wallet(0).sendTransaction({ to, value: parseEther("0.001") }))).hash}:native`);
      else {
        const t = await mined(token.getFunction("transfer")(to, 1_000n + BigInt(i)));
        refs.push(`${t.hash}:${(await anvil.provider.getTransactionReceipt(t.hash))!.logs[0]!.index}`);
      }
      await anvil.mine(10);
    }
    const tip = await anvil.height();
    // A slow node, so the kill lands mid catch-up.
    const slow = await startRpcProxy(anvil.http, { delayMs: 15 });
    const file = writeConfig("kill.json", { rpc: [{ http: slow.url }], batch_size: 10, poll_interval_ms: 200 });
    const env = {
      EVM_CONFIG: file,
      EVM_SEED_MNEMONIC: AGENT_MNEMONIC,
      COORDINATOR_ADDR: tc.address,
      ASSET_CONTRACT_OVERRIDES: JSON.stringify({ "anvil:USDT": tokenAddr }),
    };
    try {
      const first = await run({ ...env, AGENT_ID: "agent-1" }, "Lease granted");
      await eventually(async () => ((await cursorHeight(tc.sql)) ?? 0n) > tip / 3n, { timeout: 20_000 });
      await first.kill("SIGKILL");
      const killedAt = (await cursorHeight(tc.sql))!;
      expect(killedAt).toBeLessThan(tip);

      // agent-1's lease lapses (1 s): agent-2 takes over from the coordinator's cursor.
      const second = await run({ ...env, AGENT_ID: "agent-2" }, "Lease granted");
      await eventually(async () => ((await cursorHeight(tc.sql)) ?? 0n) >= tip, { timeout: 30_000 });
      // Stored once each, and nothing else; the 10 blocks after each deposit made it final.
      const stored = await deposits(tc.sql);
      for (const r of refs) expect(stored.get(r)?.status, r).toBe("CONFIRMED");
      expect(stored.size).toBe(refs.length);
      // Neither process reported a deposit the other (or itself) had reported: the second
      // started after the cursor. (The one deposit of the killed process's last, unanswered
      // call may show in no log, but it is stored.)
      const logged = [...first.lines, ...second.lines].flatMap((l) => {
        try {
          const j = JSON.parse(l) as { msg?: string; tx_ref?: string };
          return j.msg === "Deposit reported" && j.tx_ref ? [j.tx_ref] : [];
        } catch {
          return [];
        }
      });
      expect(new Set(logged).size).toBe(logged.length);
      expect(logged.every((r) => refs.includes(r))).toBe(true);
      expect(logged.length).toBeGreaterThanOrEqual(refs.length - 1);
      // The pool was topped up from index 4 on (0..3 were stored before).
      expect((await tc.sql`SELECT 1 FROM deposit_addresses WHERE network = ${NETWORK} AND status = 'AVAILABLE'`).length).toBe(8);
      expect([...first.lines, ...second.lines].join("\n")).not.toContain("abandon abandon");
      await second.kill("SIGTERM");
      expect(second.lines.some((l) => l.includes("Lease released"))).toBe(true);
      expect(await leaseOf(tc.sql)).toMatchObject({ holder: "agent-2", lapsed: true });
      for (const t of trades) expect(await tradeStatus(tc.sql, t.tradeId)).toBe("DEPOSIT_DETECTED");
    } finally {
      await slow.stop();
    }
  }, 90_000);
});
