// The UTXO agent's keys, all from one seed: deposit addresses m/84'/coin'/0'/0/i and the hot
// wallet m/84'/coin'/1'/0/0. Private keys exist only inside sign(), which reaches the seed through
// SeedHandle.withSeed and so fails closed when the key source stops vouching.
import type { SeedHandle } from "@ponte/agent-runtime/keys";
import { PonteError } from "@ponte/common";
import { validateMnemonic } from "bip39";
import type { Psbt } from "bitcoinjs-lib";
import type { ChainParams } from "../config/index.js";
import { accountPath, bip32, createUtxoDeriver, HOT_ACCOUNT, p2wpkh, type UtxoDeriver } from "../derive/index.js";

export interface SignerKey {
  role: "hot" | "deposit";
  address: string;
  script: string;
  path: string;
}

export interface UtxoKeys {
  readonly ref: string;
  readonly hot: { address: string; path: string; script: string };
  readonly deriver: UtxoDeriver;
  /** The key for from: the hot wallet (index ignored) or deposit address `index`; null when not ours. */
  keyFor(from: string, index: number): SignerKey | null;
  /** Signs every input of psbt with the key of its signer (one key per input, in order) and finalizes. */
  sign(psbt: Psbt, signers: SignerKey[]): Promise<void>;
}

export async function createUtxoKeys(seed: SeedHandle, chain: ChainParams): Promise<UtxoKeys> {
  if (seed.kind === "mnemonic" && !validateMnemonic(seed.mnemonic())) {
    throw new PonteError("KEY_SOURCE_INVALID", `The seed at ${seed.ref} is not a valid BIP39 mnemonic (bad word or checksum)`, {
      key_ref: seed.ref,
      reason: "mnemonic_checksum",
    });
  }
  const bytes = seed.seedBytes();
  let deriver: UtxoDeriver;
  let hot: { address: string; path: string; script: string };
  try {
    deriver = createUtxoDeriver(bytes, chain);
    const path = `${accountPath(chain, HOT_ACCOUNT)}/0/0`;
    hot = { ...p2wpkh(bip32.fromSeed(bytes, chain.network).derivePath(path).publicKey, chain), path };
  } finally {
    bytes.fill(0);
  }
  return {
    ref: seed.ref,
    hot,
    deriver,
    keyFor(from, index) {
      if (from === hot.address) return { role: "hot", ...hot };
      if (!Number.isInteger(index) || index < 0 || index > 0x7fff_ffff) return null;
      const d = deriver.derive(index);
      return d.address === from ? { role: "deposit", address: d.address, script: d.script!, path: d.path } : null;
    },
    async sign(psbt, signers) {
      await seed.withSeed((s) => {
        const master = s.seedBytes();
        try {
          const root = bip32.fromSeed(master, chain.network);
          signers.forEach((k, i) => {
            const node = root.derivePath(k.path);
            // A path that does not give the expected address must never sign.
            if (p2wpkh(node.publicKey, chain).address !== k.address) {
              throw new PonteError("KEY_SOURCE_INVALID", `The key at ${k.path} is not ${k.address}`, { path: k.path, address: k.address });
            }
            psbt.signInput(i, { publicKey: node.publicKey, sign: (hash: Uint8Array, lowR?: boolean) => node.sign(hash, lowR) });
          });
        } finally {
          master.fill(0);
        }
      });
      psbt.finalizeAllInputs();
    },
  };
}
