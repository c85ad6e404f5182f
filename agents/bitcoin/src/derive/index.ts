// BIP84 (P2WPKH) deposit addresses m/84'/coin'/0'/0/i (outputs are attributed to them in ../script).
import type { DerivedAddress } from "@ponte/agent-runtime";
import { BIP32Factory, type BIP32Interface } from "bip32";
import { address as baddress, payments } from "bitcoinjs-lib";
import * as ecc from "tiny-secp256k1";
import type { ChainParams } from "../config/index.js";

export const bip32 = BIP32Factory(ecc);

/** m/84'/coin'/account' */
export const accountPath = (chain: ChainParams, account: number): string => `m/84'/${chain.coinType}'/${account}'`;
/** Deposit addresses live in account 0; the hot wallet is account 1 (so no index can collide with it). */
export const DEPOSIT_ACCOUNT = 0;
export const HOT_ACCOUNT = 1;

export interface UtxoDeriver {
  derive(index: number): DerivedAddress;
}

const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** P2WPKH address and scriptPubKey of a compressed public key. */
export function p2wpkh(pubkey: Uint8Array, chain: ChainParams): { address: string; script: string } {
  const p = payments.p2wpkh({ pubkey, network: chain.network });
  return { address: p.address!, script: toHex(p.output!) };
}

/**
 * Deposit addresses m/84'/coin'/0'/0/i from the BIP32 master seed (what a SeedHandle gives), or
 * from a mnemonic's seed in tests. Only the neutered account node (an xpub) is kept: the watcher
 * never needs a private key.
 */
export function createUtxoDeriver(seed: Uint8Array, chain: ChainParams): UtxoDeriver {
  const account: BIP32Interface = bip32.fromSeed(seed, chain.network).derivePath(accountPath(chain, DEPOSIT_ACCOUNT)).neutered();
  const external = account.derive(0);
  return {
    derive(index) {
      if (!Number.isInteger(index) || index < 0 || index > 0x7fff_ffff) throw new RangeError(`derivation index out of range: ${index}`);
      const { address, script } = p2wpkh(external.derive(index).publicKey, chain);
      return { index, address, script, path: `${accountPath(chain, DEPOSIT_ACCOUNT)}/0/${index}` };
    },
  };
}

/** scriptPubKey hex of an address of chain; throws when it is not one. */
export function outputScript(address: string, chain: ChainParams): Uint8Array {
  return baddress.toOutputScript(address, chain.network);
}
