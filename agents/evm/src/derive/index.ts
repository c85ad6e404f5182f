import type { DerivedAddress } from "@ponte/agent-runtime";
import { HDNodeWallet } from "ethers";

export const EVM_ACCOUNT_PATH = "m/44'/60'/0'/0";

export interface EvmDeriver {
  derive(index: number): DerivedAddress;
}

/**
 * Deposit addresses m/44'/60'/0'/0/i. Only the neutered account node (an xpub) is kept: the
 * watcher never needs a private key, so none stays in its memory.
 */
export function createEvmDeriver(mnemonic: string): EvmDeriver {
  const account = HDNodeWallet.fromPhrase(mnemonic, undefined, EVM_ACCOUNT_PATH).neuter();
  return {
    derive(index) {
      if (!Number.isInteger(index) || index < 0 || index > 0x7fff_ffff) throw new RangeError(`derivation index out of range: ${index}`);
      return { index, address: account.deriveChild(index).address, path: `${EVM_ACCOUNT_PATH}/${index}` };
    },
  };
}
