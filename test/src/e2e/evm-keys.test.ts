// Issue 5's key faults with real processes: the EVM agent reading its seed from Vault (the
// stand-in, through the production node-vault client). Vault unreachable or a bad token at
// start → the agent refuses to start (exit 1) with a clear error; Vault lost later → signing
// fails closed (no transfer is signed, nothing recorded) while deposits are still followed, and
// the transfer goes through once Vault is back.
import { eventually, freePort, startProcess, type RunningProcess } from "@ponte/common/testing";
import { HDNodeWallet, parseEther, Wallet } from "ethers";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MNEMONIC, mined, startEvmAgent, startEvmChain, type EvmChain } from "../harness/evm.js";
import { startStack, type Stack } from "../harness/stack.js";
import { startVaultStandin, type VaultStandin } from "../standins/vault/index.js";

const agentEntry = fileURLToPath(new URL("../../../agents/evm/dist/main.js", import.meta.url));
const PATH = "ponte/agents/evm";
const TOKEN = "hvs.evm-agent-token-4f2a";
const HOT = HDNodeWallet.fromPhrase(AGENT_MNEMONIC, undefined, "m/44'/60'/1'/0/0").address;
const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";

let s: Stack;
let chain: EvmChain;
let vault: VaultStandin;
const procs: RunningProcess[] = [];

beforeAll(async () => {
  chain = await startEvmChain();
  vault = await startVaultStandin();
  vault.writePolicy("evm-agent", { path: { [`secret/data/${PATH}`]: { capabilities: ["read"] } } });
  vault.createToken({ id: TOKEN, policies: ["evm-agent"], ttl: 3600 });
  vault.writeSecret("secret", PATH, { seed: AGENT_MNEMONIC });
  s = await startStack({ env: { ...chain.overrides, LEASE_TTL_MS: "2000", TRANSFER_INTERVAL_MS: "200" } });
  await mined(chain.anvil.wallet(0).sendTransaction({ to: HOT, value: parseEther("10") }));
});
afterEach(async () => {
  while (procs.length) await procs.pop()!.kill("SIGKILL");
  if (!vault.listening) await vault.startListening();
});
afterAll(async () => {
  await s?.stop();
  await vault?.stop();
  await chain?.anvil.stop();
});

const vaultEnv = (o: Record<string, string> = {}) => ({
  SEED_SOURCE: "vault",
  EVM_SEED_MNEMONIC: "",
  VAULT_ADDR: vault.url,
  VAULT_TOKEN: TOKEN,
  VAULT_SEED_PATH: PATH,
  VAULT_TIMEOUT_MS: "2000",
  ...o,
});

/** The agent process that is expected to stop at start-up: its exit code and everything it printed. */
async function startAndFail(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const p = await startProcess({
    name: "agent-evm-keys",
    entry: agentEntry,
    env: { EVM_CONFIG: chain.configFile, COORDINATOR_ADDR: s.grpcTarget, METRICS_PORT: "0", LOG_LEVEL: "info", ...chain.overrides, ...env },
  });
  procs.push(p);
  await eventually(() => p.exitCode !== null, { timeout: 20_000, message: "the agent did not stop" });
  return { code: p.exitCode, out: p.lines.join("\n") };
}

function expectNoSecrets(out: string) {
  for (const secret of [TOKEN, "abandon abandon", vault.rootToken]) expect(out).not.toContain(secret);
}

describe("EVM agent keys in Vault", () => {
  it("refuses to start when Vault is unreachable, saying where it looked", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const { code, out } = await startAndFail(vaultEnv({ VAULT_ADDR: closed }));
    expect(code).toBe(1);
    expect(out).toContain("The EVM agent cannot read its seed (KEY_SOURCE_UNAVAILABLE)");
    expect(out).toMatch(/Vault at http:\/\/127\.0\.0\.1:\d+\/? is unreachable \(ECONNREFUSED\)/);
    expect(out).not.toContain("Lease granted");
    expectNoSecrets(out);
  });

  it("refuses to start with a bad token, and with a sealed Vault", async () => {
    const bad = await startAndFail(vaultEnv({ VAULT_TOKEN: "hvs.wrong-token-000" }));
    expect(bad.code).toBe(1);
    expect(bad.out).toContain("The EVM agent cannot read its seed (KEY_SOURCE_DENIED)");
    expect(bad.out).toContain(`Vault refused to read secret/${PATH} (HTTP 403)`);
    expect(bad.out).not.toContain("hvs.wrong-token-000");
    expectNoSecrets(bad.out);

    vault.seal();
    try {
      const sealed = await startAndFail(vaultEnv());
      expect(sealed.code).toBe(1);
      expect(sealed.out).toContain("KEY_SOURCE_UNAVAILABLE");
      expect(sealed.out).toMatch(/sealed/);
    } finally {
      vault.unseal();
    }
  });

  it("refuses SEED_SOURCE=env when NODE_ENV=production", async () => {
    const { code, out } = await startAndFail({ SEED_SOURCE: "env", EVM_SEED_MNEMONIC: AGENT_MNEMONIC, NODE_ENV: "production" });
    expect(code).toBe(1);
    expect(out).toContain("SEED_SOURCE: env is for local development and is refused when NODE_ENV=production");
    expect(out).not.toContain("abandon");
  });

  it("with Vault lost later, signing fails closed while watching goes on; the transfer resumes when Vault is back", async () => {
    const agent = await startEvmAgent(s, chain, { name: "agent-evm-vault", env: vaultEnv({ AGENT_ID: "agent-evm-vault" }) });
    procs.push(agent);
    await agent.waitForLog("Lease granted");
    const [w] = await s.sql<{ key_ref: string }[]>`SELECT key_ref FROM system_wallets WHERE network = 'anvil' AND kind = 'hot'`;
    expect(w?.key_ref).toBe(`vault:secret/${PATH}#seed`);

    await vault.stopListening();
    const to = Wallet.createRandom().address;
    const orderId = `tro_keys_${Date.now().toString(36)}`;
    await s.sql`INSERT INTO transfer_transactions (id, network, kind, status, from_address, to_address, contract, amount)
                VALUES (${orderId}, 'anvil', 'REFUND', 'PENDING', ${HOT}, ${to}, '', ${parseEther("0.2").toString()})`;
    await s.sql`SELECT pg_notify('ponte_transfers', 'anvil')`;
    await agent.waitForLog("Transfer order paused by an outage");

    // Watching goes on: a sale is paid and confirmed while signing is closed.
    const token = s.token("u-vault-lost");
    const q = await s.api("/api/v1/instant-trade/quote", { token, body: { symbol: "ETH", network: "anvil", crypto_amount: "0.01" } });
    const c = await s.api("/api/v1/instant-trade/create", {
      token,
      body: { quote_id: q.body.quote_id, refund_address: refund },
      headers: { "idempotency-key": `k-${q.body.quote_id}` },
    });
    expect(c.status).toBe(201);
    await mined(chain.anvil.wallet(1).sendTransaction({ to: c.body.deposit_address, value: parseEther("0.01") }));
    await chain.anvil.mine(2);
    await eventually(async () => expect((await s.api(`/api/v1/instant-trade/${c.body.id}`, { token })).body.status).toBe("PAYMENT_CONFIRMED"), { timeout: 15_000 });

    // Nothing was signed, so nothing was recorded or sent.
    const [o] = await s.sql<{ status: string }[]>`SELECT status FROM transfer_transactions WHERE id = ${orderId}`;
    expect(o!.status).toBe("PENDING");
    expect(await s.sql`SELECT 1 FROM transfer_attempts WHERE order_id = ${orderId}`).toHaveLength(0);
    expect(await chain.anvil.provider.getBalance(to)).toBe(0n);

    await vault.startListening();
    await eventually(
      async () => {
        await chain.anvil.mine(1);
        const [r] = await s.sql<{ status: string }[]>`SELECT status FROM transfer_transactions WHERE id = ${orderId}`;
        expect(r!.status).toBe("CONFIRMED");
      },
      { timeout: 45_000, interval: 250 },
    );
    expect(await chain.anvil.provider.getBalance(to)).toBe(parseEther("0.2"));
    expectNoSecrets(agent.lines.join("\n"));
  }, 90_000);
});
