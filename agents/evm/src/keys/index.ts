// The EVM agent's keys, all from one seed: deposit addresses m/44'/60'/0'/0/i, the hot wallet
// m/44'/60'/1'/0/0 and users' custodial wallets m/44'/60'/2'/0/i (each its own account, so no
// index of one kind can ever give an address of another).
// Addresses are derived once at start; a private key exists only inside signTransaction, which
// goes through SeedHandle.withSeed and so fails closed when the key source stops vouching.
import { PonteError } from "@ponte/common";
import type { SeedHandle } from "@ponte/agent-runtime/keys";
import { getAddress, HDNodeWallet, Mnemonic, Transaction, type TransactionLike } from "ethers";
import { createEvmDeriver, type EvmDeriver } from "../derive/index.js";

export const EVM_HOT_WALLET_PATH = "m/44'/60'/1'/0/0";
export const EVM_CUSTODIAL_ACCOUNT_PATH = "m/44'/60'/2'/0";

export interface SignerKey {
  role: "hot" | "deposit" | "custodial";
  address: string;
  path: string;
}

export interface SignedTx {
  raw: string;
  hash: string;
}

export interface EvmKeys {
  /** Where the seed lives (a key reference, never the key). */
  readonly ref: string;
  readonly hot: { address: string; path: string };
  readonly deriver: EvmDeriver;
  /**
   * The key that signs for from: the hot wallet (index ignored), or address `index` of the
   * deposit account (default) or of the custodial account. null when this seed cannot sign for from.
   */
  keyFor(from: string, index: number, account?: "deposit" | "custodial"): SignerKey | null;
  /** A user's custodial wallet address at `index` (what ops registers with the coordinator). */
  custodialAddress(index: number): string;
  /** Signs with the key at key.path; throws KEY_SOURCE_* when the key source no longer vouches. */
  sign(key: SignerKey, tx: TransactionLike): Promise<SignedTx>;
}

export async function createEvmKeys(seed: SeedHandle): Promise<EvmKeys> {
  // parseSeedMaterial checks the shape; the BIP39 checksum needs ethers' wordlist. A typo in a
  // mnemonic would otherwise silently derive someone else's (empty) addresses.
  if (seed.kind === "mnemonic" && !Mnemonic.isValidMnemonic(seed.mnemonic())) {
    throw new PonteError("KEY_SOURCE_INVALID", `The seed at ${seed.ref} is not a valid BIP39 mnemonic (bad word or checksum)`, {
      key_ref: seed.ref,
      reason: "mnemonic_checksum",
    });
  }
  const bytes = seed.seedBytes();
  let hot: { address: string; path: string };
  let deriver: EvmDeriver;
  let custodial: HDNodeWallet | ReturnType<HDNodeWallet["neuter"]>;
  try {
    deriver = createEvmDeriver(bytes);
    const root = HDNodeWallet.fromSeed(bytes);
    hot = { address: root.derivePath(EVM_HOT_WALLET_PATH).address, path: EVM_HOT_WALLET_PATH };
    // Public derivation only (an xpub), as for deposit addresses: no private key stays in memory.
    custodial = root.derivePath(EVM_CUSTODIAL_ACCOUNT_PATH).neuter();
  } finally {
    bytes.fill(0);
  }

  return {
    ref: seed.ref,
    hot,
    deriver,
    keyFor(from, index, account = "deposit") {
      let address: string;
      try {
        address = getAddress(from);
      } catch {
        return null;
      }
      if (address === hot.address) return { role: "hot", address, path: hot.path };
      if (!Number.isInteger(index) || index < 0 || index > 0x7fff_ffff) return null;
      if (account === "custodial") {
        const a = custodial.deriveChild(index).address;
        return a === address ? { role: "custodial", address, path: `${EVM_CUSTODIAL_ACCOUNT_PATH}/${index}` } : null;
      }
      const d = deriver.derive(index);
      return d.address === address ? { role: "deposit", address, path: d.path } : null;
    },
    custodialAddress(index) {
      if (!Number.isInteger(index) || index < 0 || index > 0x7fff_ffff) throw new RangeError(`derivation index out of range: ${index}`);
      return custodial.deriveChild(index).address;
    },
    async sign(key, tx) {
      return seed.withSeed(async (s) => {
        const master = s.seedBytes();
        try {
          const wallet = HDNodeWallet.fromSeed(master).derivePath(key.path);
          // Belt and braces: a path that does not give the expected address must never sign.
          if (wallet.address !== key.address) {
            throw new PonteError("KEY_SOURCE_INVALID", `The key at ${key.path} is not ${key.address}`, { path: key.path, address: key.address });
          }
          const raw = await wallet.signTransaction(tx);
          return { raw, hash: Transaction.from(raw).hash! };
        } finally {
          master.fill(0);
        }
      });
    },
  };
}
