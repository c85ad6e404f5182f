import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { Interface } from "ethers";
import type { AnvilNode } from "./anvil.js";
import type { TradeSpec } from "./fixtures.js";
import { TEST_TOKEN } from "./paths.js";

// An anvil chain that pays trades: the test token deployed and minted to five senders, and the
// transactions of a deposit (native ETH or an ERC-20 transfer), the same for every benchmark
// that follows deposits (B6, B7).

export const NATIVE_AMOUNT = 10_000_000_000_000_000n;
export const TOKEN_AMOUNT = 100_000_000n;

export interface PlannedDeposit {
  address: string;
  native: boolean;
}

export interface DepositChain {
  tokenAddr: string;
  senders: string[];
  /** The eth_sendTransaction fields of a deposit (no nonce: the node assigns it). */
  txFields(p: PlannedDeposit, from: string): Record<string, string>;
  /** Sends deposits with explicit, locally counted nonces in one JSON-RPC batch (no reorgs). */
  sendBatch(deposits: PlannedDeposit[], round: number): Promise<string[]>;
  tradeSpec(p: PlannedDeposit): TradeSpec;
}

export const randomAddress = () => `0x${randomBytes(20).toString("hex")}`;

export async function depositChain(anvil: AnvilNode): Promise<DepositChain> {
  const artifact = JSON.parse(readFileSync(TEST_TOKEN, "utf8")) as { abi: unknown[]; bytecode: string };
  const token = new Interface(artifact.abi as never);
  const senders = (await anvil.rpc<string[]>("eth_accounts")).slice(0, 5);
  const deployHash = await anvil.rpc<string>("eth_sendTransaction", [
    { from: senders[0], data: artifact.bytecode + token.encodeDeploy(["Bench USDT", "USDT", 6]).slice(2), gas: "0x2dc6c0" },
  ]);
  await anvil.rpc("evm_mine");
  const receipt = await anvil.rpc<{ contractAddress: string }>("eth_getTransactionReceipt", [deployHash]);
  const tokenAddr = receipt.contractAddress.toLowerCase();
  for (const s of senders) {
    await anvil.rpc("eth_sendTransaction", [{ from: senders[0], to: tokenAddr, data: token.encodeFunctionData("mint", [s, 10n ** 15n]), gas: "0x186a0" }]);
  }
  await anvil.rpc("evm_mine");
  const nonces = new Map<string, number>();
  for (const s of senders) nonces.set(s, Number(BigInt(await anvil.rpc<string>("eth_getTransactionCount", [s, "latest"]))));
  const txFields = (p: PlannedDeposit, from: string): Record<string, string> =>
    p.native
      ? { from, to: p.address, value: `0x${NATIVE_AMOUNT.toString(16)}`, gas: "0x5208" }
      : { from, to: tokenAddr, data: token.encodeFunctionData("transfer", [p.address, TOKEN_AMOUNT]), gas: "0x11170" };
  return {
    tokenAddr,
    senders,
    txFields,
    sendBatch(deposits, round) {
      return anvil.batch<string>(
        deposits.map((p, i) => {
          const from = senders[(round + i) % senders.length]!;
          const n = nonces.get(from)!;
          nonces.set(from, n + 1);
          return ["eth_sendTransaction", [{ ...txFields(p, from), nonce: `0x${n.toString(16)}` }]];
        }),
      );
    },
    tradeSpec: (p) =>
      p.native
        ? { address: p.address, symbol: "ETH", decimals: 18, contract: "", amount: NATIVE_AMOUNT }
        : { address: p.address, symbol: "USDT", decimals: 6, contract: tokenAddr, amount: TOKEN_AMOUNT },
  };
}
