// Network parameters of the UTXO chains this agent knows, in bitcoinjs-lib's Network shape plus
// what the agent checks and derives with. Litecoin regtest's were verified against litecoind.
import type { Network } from "bitcoinjs-lib";

export type ChainName = "bitcoin" | "bitcoin-testnet" | "bitcoin-regtest" | "litecoin" | "litecoin-testnet" | "litecoin-regtest";

export interface ChainParams {
  name: ChainName;
  /** What getblockchaininfo.chain says on a node of this network. */
  nodeChain: "main" | "test" | "regtest";
  /** Block 0: tells Bitcoin from Litecoin when both say "main". null: not checked. */
  genesis: string | null;
  /** SLIP-44 coin type of the BIP84 path (1 on every test network). */
  coinType: number;
  /** Ticker, for logs and metrics. */
  symbol: "BTC" | "LTC";
  network: Network;
  /** Default confirmations before a deposit is final (DESIGN.md §6). */
  defaultConfirmations: number;
}

const BIP32_MAIN = { public: 0x0488b21e, private: 0x0488ade4 };
const BIP32_TEST = { public: 0x043587cf, private: 0x04358394 };
const BTC_MSG = "\x18Bitcoin Signed Message:\n";
const LTC_MSG = "\x19Litecoin Signed Message:\n";

export const CHAINS: Record<ChainName, ChainParams> = {
  bitcoin: {
    name: "bitcoin",
    nodeChain: "main",
    genesis: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    coinType: 0,
    symbol: "BTC",
    network: { messagePrefix: BTC_MSG, bech32: "bc", bip32: BIP32_MAIN, pubKeyHash: 0x00, scriptHash: 0x05, wif: 0x80 },
    defaultConfirmations: 3,
  },
  "bitcoin-testnet": {
    name: "bitcoin-testnet",
    nodeChain: "test",
    genesis: "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
    coinType: 1,
    symbol: "BTC",
    network: { messagePrefix: BTC_MSG, bech32: "tb", bip32: BIP32_TEST, pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef },
    defaultConfirmations: 3,
  },
  "bitcoin-regtest": {
    name: "bitcoin-regtest",
    nodeChain: "regtest",
    genesis: "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
    coinType: 1,
    symbol: "BTC",
    network: { messagePrefix: BTC_MSG, bech32: "bcrt", bip32: BIP32_TEST, pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef },
    defaultConfirmations: 3,
  },
  litecoin: {
    name: "litecoin",
    nodeChain: "main",
    genesis: "12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2",
    coinType: 2,
    symbol: "LTC",
    network: { messagePrefix: LTC_MSG, bech32: "ltc", bip32: BIP32_MAIN, pubKeyHash: 0x30, scriptHash: 0x32, wif: 0xb0 },
    defaultConfirmations: 6,
  },
  "litecoin-testnet": {
    name: "litecoin-testnet",
    nodeChain: "test",
    genesis: null,
    coinType: 1,
    symbol: "LTC",
    network: { messagePrefix: LTC_MSG, bech32: "tltc", bip32: BIP32_TEST, pubKeyHash: 0x6f, scriptHash: 0x3a, wif: 0xef },
    defaultConfirmations: 6,
  },
  "litecoin-regtest": {
    name: "litecoin-regtest",
    nodeChain: "regtest",
    genesis: "530827f38f93b43ed12af0b3ad25a288dc02ed74d6d7857862df51fc56c416f9",
    coinType: 1,
    symbol: "LTC",
    network: { messagePrefix: LTC_MSG, bech32: "rltc", bip32: BIP32_TEST, pubKeyHash: 0x6f, scriptHash: 0x3a, wif: 0xef },
    defaultConfirmations: 6,
  },
};

export const CHAIN_NAMES = Object.keys(CHAINS) as ChainName[];
