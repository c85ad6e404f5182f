// How the demo pays a deposit on each local chain: from a funded anvil wallet (USDT, ETH) or
// from litecoind's demo wallet (LTC), and how it counts the deposit's confirmations meanwhile.
import type { StackInfo } from "../state/index.js";
import type { Asset } from "./api.js";

/** Base units as "1.5 USDT" / "0.0001 ETH": the trade's token when the contract is its, else the native coin. */
export type AmountFormat = (baseUnits: string, contract: string | null | undefined) => string;

export interface DemoChain {
  /** Where a refund of the deposit goes: the paying wallet. */
  readonly refundAddress: string;
  /** Who pays, for the log line. */
  readonly payerLabel: string;
  /** Sends amount (base units) to the deposit address; resolves when the chain took it (EVM: mined; UTXO: in the mempool). */
  pay(to: string, amount: bigint): Promise<{ txid: string; where: string }>;
  /** The deposit's confirmations now, its own block counted (0 while unconfirmed). */
  confirmations(): Promise<number>;
  readonly format: AmountFormat;
  close(): void;
}

/** Thrown for what the person running the demo can fix. */
export class ChainUnavailableError extends Error {}

export async function evmChain(stack: StackInfo, asset: Asset): Promise<DemoChain> {
  const payer = stack.anvil.wallets[0];
  if (!payer) throw new ChainUnavailableError("stack.json lists no demo wallet");
  // Loaded only now: ethers is the slowest import, and the checks before must answer fast.
  const { Interface, Wallet, formatUnits } = await import("ethers");
  const { anvilProvider } = await import("../services/anvil.js");
  const provider = anvilProvider(stack.anvil.rpcUrl);
  let depositBlock: number | undefined;
  return {
    refundAddress: payer.address,
    payerLabel: `${payer.address.slice(0, 10)}…${payer.address.slice(-6)}`,
    async pay(to, value) {
      const wallet = new Wallet(payer.privateKey, provider);
      const tx = await wallet.sendTransaction(
        asset.contract
          ? { to: asset.contract, data: new Interface(["function transfer(address to, uint256 value) returns (bool)"]).encodeFunctionData("transfer", [to, value]) }
          : { to, value },
      );
      const receipt = await tx.wait(1, 30_000);
      if (!receipt || receipt.status !== 1) throw new ChainUnavailableError(`The deposit transaction ${tx.hash} failed on chain.`);
      depositBlock = receipt.blockNumber;
      return { txid: tx.hash, where: `block ${depositBlock}` };
    },
    async confirmations() {
      if (depositBlock === undefined) return 0;
      return Math.max(0, (await provider.getBlockNumber()) - depositBlock + 1);
    },
    format: (units, contract) =>
      contract && asset.contract && contract.toLowerCase() === asset.contract.toLowerCase()
        ? `${formatUnits(units, asset.decimals)} ${asset.symbol}`
        : `${formatUnits(units, 18)} ETH`,
    close: () => provider.destroy(),
  };
}

export async function litecoinChain(stack: StackInfo, asset: Asset): Promise<DemoChain> {
  const l = stack.litecoin;
  if (!l) {
    const why = stack.agents.find((a) => a.network === asset.network)?.reason ?? "litecoind is not running";
    throw new ChainUnavailableError(
      `LTC is off in this local Ponte (${why}). Install litecoind (Debian: apt-get install -y litecoind), restart npm start, and sell LTC again.`,
    );
  }
  const { createLitecoinRpc, satsToCoins } = await import("../services/litecoin.js");
  const rpc = createLitecoinRpc({ url: l.rpcUrl, user: l.rpcUser, password: l.rpcPassword, timeoutMs: 15_000 });
  const wallet = { wallet: l.wallet };
  const refundAddress = await rpc.call<string>("getnewaddress", ["demo refund", "bech32"], wallet);
  let txid: string | undefined;
  const coins = (units: string) => `${satsToCoins(BigInt(units))} ${asset.symbol}`;
  return {
    refundAddress,
    payerLabel: `litecoind wallet "${l.wallet}"`,
    async pay(to, sats) {
      // The amount goes to the node as a decimal string made from satoshis, never as a float.
      txid = await rpc.call<string>("sendtoaddress", [to, satsToCoins(sats)], wallet);
      return { txid, where: "in the mempool" };
    },
    async confirmations() {
      if (txid === undefined) return 0;
      return (await rpc.call<{ confirmations: number }>("gettransaction", [txid], wallet)).confirmations;
    },
    format: (units) => coins(units),
    close: () => undefined,
  };
}
