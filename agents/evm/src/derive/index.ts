import type { DerivedAddress } from "@ponte/agent-runtime";
import { HDNodeWallet } from "ethers";

export const EVM_ACCOUNT_PATH = "m/44'/60'/0'/0";

export interface EvmDeriver {
  derive(index: number): DerivedAddress;
}

/**
 * Deposit addresses m/44'/60'/0'/0/i, from a BIP39 mnemonic or the BIP32 master seed bytes
 * (what a SeedHandle gives; a mnemonic's seed is the same one fromPhrase uses). Only the
 * neutered account node (an xpub) is kept: the watcher never needs a private key, so none
 * stays in its memory.
 */
export function createEvmDeriver(seed: string | Uint8Array): EvmDeriver {
  const root = typeof seed === "string" ? HDNodeWallet.fromPhrase(seed, undefined, "m") : HDNodeWallet.fromSeed(seed);
  const account = root.derivePath(EVM_ACCOUNT_PATH).neuter();
  return {
    derive(index) {
      if (!Number.isInteger(index) || index < 0 || index > 0x7fff_ffff) throw new RangeError(`derivation index out of range: ${index}`);
      return { index, address: account.deriveChild(index).address, path: `${EVM_ACCOUNT_PATH}/${index}` };
    },
  };
}
