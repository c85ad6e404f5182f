import { parseEther, Wallet } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnvil, type Anvil } from "../_test/anvil.js";
import { testRpc } from "../_test/rpc.js";
import { bump, capFees, readFees, replacementFees } from "./fees.js";
import { createNonceManager } from "./nonce.js";

const GWEI = 1_000_000_000n;
let anvil: Anvil;
let rpc: ReturnType<typeof testRpc>;
beforeAll(async () => {
  anvil = await startAnvil();
  rpc = testRpc(anvil.http);
});
afterAll(async () => {
  rpc?.abort();
  await anvil?.stop();
});

describe("fees", () => {
  it("reads the next base fee and the tip from the node and caps both", async () => {
    await anvil.rpc("anvil_setNextBlockBaseFeePerGas", [`0x${(7n * GWEI).toString(16)}`]);
    const tip = BigInt(await anvil.rpc<string>("eth_maxPriorityFeePerGas"));
    const f = await readFees(rpc.rpc, 1_000n * GWEI);
    expect(f.baseFee).toBe(7n * GWEI);
    expect(f.maxPriorityFeePerGas).toBe(tip);
    expect(f.maxFeePerGas).toBe(14n * GWEI + tip);
    const capped = await readFees(rpc.rpc, 10n * GWEI);
    expect(capped.maxFeePerGas).toBe(10n * GWEI);
    expect(capFees({ baseFee: 1n, maxFeePerGas: 100n, maxPriorityFeePerGas: 80n }, 50n)).toEqual({ baseFee: 1n, maxFeePerGas: 50n, maxPriorityFeePerGas: 50n });
  });

  it("bumps a replacement by at least 12.5 % on both fields, to what the node asks if more, never above the cap", () => {
    expect(bump(8n)).toBe(9n);
    expect(bump(1_000_000_001n)).toBe(1_125_000_002n);
    for (const x of [1n, 7n, 3n * GWEI, 123_456_789n]) expect(bump(x) * 1000n >= x * 1125n).toBe(true);
    const prev = { maxFeePerGas: 3n * GWEI, maxPriorityFeePerGas: GWEI };
    const quiet = { baseFee: GWEI, maxFeePerGas: 2n * GWEI, maxPriorityFeePerGas: GWEI / 2n };
    expect(replacementFees(prev, quiet, 100n * GWEI)).toEqual({ baseFee: GWEI, maxFeePerGas: bump(3n * GWEI), maxPriorityFeePerGas: bump(GWEI) });
    const spike = { baseFee: 40n * GWEI, maxFeePerGas: 81n * GWEI, maxPriorityFeePerGas: GWEI };
    expect(replacementFees(prev, spike, 100n * GWEI)!.maxFeePerGas).toBe(81n * GWEI);
    expect(replacementFees(prev, spike, 50n * GWEI)).toBeNull();
  });
});

describe("nonce manager", () => {
  it("hands concurrent senders of one address distinct, consecutive nonces and survives a restart", async () => {
    const w = anvil.wallet(1);
    const start = BigInt(await anvil.rpc<string>("eth_getTransactionCount", [w.address, "pending"]));
    const nonces = createNonceManager({ rpc: rpc.rpc });
    const got: bigint[] = [];
    // Ten senders at once, each taking a nonce and sending under the lock, as the executor does.
    await Promise.all(
      Array.from({ length: 10 }, () =>
        nonces.withLock(w.address, async () => {
          const n = await nonces.next(w.address);
          const tx = await w.signTransaction({ to: Wallet.createRandom().address, value: 1n, nonce: Number(n), gasLimit: 21_000, maxFeePerGas: 10n * GWEI, maxPriorityFeePerGas: GWEI, chainId: 31337 });
          await anvil.rpc("eth_sendRawTransaction", [tx]);
          nonces.commit(w.address, n);
          got.push(n);
        }),
      ),
    );
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => start + BigInt(i)));
    // A failure inside the lock does not wedge the address.
    await expect(nonces.withLock(w.address, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    // A fresh manager (a restarted agent) starts from the node's pending count…
    const again = createNonceManager({ rpc: rpc.rpc });
    expect(await again.next(w.address)).toBe(start + 10n);
    // …and above a recorded attempt's nonce the node has not seen (signed, never broadcast).
    again.commit(w.address, start + 12n);
    expect(await again.next(w.address)).toBe(start + 13n);
    expect(BigInt(await anvil.rpc<string>("eth_getBalance", [w.address, "latest"]))).toBeGreaterThan(parseEther("1"));
  });
});
