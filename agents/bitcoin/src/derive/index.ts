// BIP84 (P2WPKH) deposit addresses m/84'/coin'/0'/0/i and the attribution of outputs to them.
import type { DerivedAddress } from "@ponte/agent-runtime";
import { BIP32Factory, type BIP32Interface } from "bip32";
import { address as baddress, payments } from "bitcoinjs-lib";
import * as ecc from "tiny-secp256k1";
import type { ChainParams, ScriptType } from "../config/index.js";

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

/**
 * The address an output pays, when it is of a type this agent credits (P2WPKH always; P2PKH and
 * P2SH — P2SH-P2WPKH among them — when configured), else null. Attribution is by scriptPubKey:
 * the node's own address fields differ between versions (`address` vs `addresses`).
 */
export function createScriptReader(chain: ChainParams, accept: readonly ScriptType[]) {
  const p2pkh = accept.includes("p2pkh");
  const p2sh = accept.includes("p2sh");
  return (scriptHex: string): string | null => {
    const n = scriptHex.length;
    const isP2wpkh = n === 44 && scriptHex.startsWith("0014");
    const isP2pkh = p2pkh && n === 50 && scriptHex.startsWith("76a914") && scriptHex.endsWith("88ac");
    const isP2sh = p2sh && n === 46 && scriptHex.startsWith("a914") && scriptHex.endsWith("87");
    if (!isP2wpkh && !isP2pkh && !isP2sh) return null;
    try {
      return baddress.fromOutputScript(Buffer.from(scriptHex, "hex"), chain.network);
    } catch {
      return null;
    }
  };
}

/** scriptPubKey hex of an address of chain; throws when it is not one. */
export function outputScript(address: string, chain: ChainParams): Uint8Array {
  return baddress.toOutputScript(address, chain.network);
}
