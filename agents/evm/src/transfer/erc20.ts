import { dataSlice, getAddress, Interface, keccak256, toUtf8Bytes } from "ethers";
import type { EvmRpc } from "../rpc/index.js";

export const ERC20 = new Interface([
  "function transfer(address to, uint256 amount) returns (bool)",
  "function balanceOf(address owner) view returns (uint256)",
]);

export const encodeTransfer = (to: string, amount: bigint): string => ERC20.encodeFunctionData("transfer", [to, amount]);

export async function tokenBalance(rpc: EvmRpc, contract: string, owner: string, block = "latest"): Promise<bigint> {
  const data = ERC20.encodeFunctionData("balanceOf", [owner]);
  return BigInt(await rpc.call<string>("eth_call", [{ to: contract, data }, block]));
}

/**
 * An address nobody holds a key or tokens for: a gas top-up estimates the sweep as a transfer
 * to a first-time holder, the dearest case (a new storage slot), whoever the recipient will be.
 */
export const ESTIMATE_RECIPIENT = getAddress(dataSlice(keccak256(toUtf8Bytes("ponte:gas-estimate-recipient")), 12));
