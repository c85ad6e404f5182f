import { PonteError } from "@ponte/common";
import { bech32, bech32m } from "bech32";
import bs58check from "bs58check";
import { isAddress } from "ethers";
import type { ChainFamily } from "../quote/types.js";

// Refund addresses are checked per chain family at trade creation, so a refund can never be
// ordered to an address the network cannot pay. EVM: hex with a valid EIP-55 checksum when
// mixed case. UTXO: decoded — segwit (BIP173 bech32 for v0, BIP350 bech32m for v1+, with the
// network's prefix and a valid program length) or base58check with the network's P2PKH/P2SH
// version byte — so an address of another network is refused. Solana by format; the agents
// verify again before signing.
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;
const BECH32 = /^[a-z]{1,83}1[02-9ac-hj-np-z]{6,87}$/;

/** Address parameters per UTXO network: bech32 prefix and base58check version bytes. */
interface UtxoAddressParams {
  hrp: string;
  pubKeyHash: number;
  scriptHash: readonly number[];
}
const UTXO_NETWORKS: Record<string, UtxoAddressParams> = {
  bitcoin: { hrp: "bc", pubKeyHash: 0x00, scriptHash: [0x05] },
  "bitcoin-testnet": { hrp: "tb", pubKeyHash: 0x6f, scriptHash: [0xc4] },
  "bitcoin-regtest": { hrp: "bcrt", pubKeyHash: 0x6f, scriptHash: [0xc4] },
  // Litecoin's P2SH moved to 0x32 ("M…"); the old 0x05 ("3…") addresses are still valid there.
  litecoin: { hrp: "ltc", pubKeyHash: 0x30, scriptHash: [0x32, 0x05] },
  "litecoin-testnet": { hrp: "tltc", pubKeyHash: 0x6f, scriptHash: [0x3a, 0xc4] },
  "litecoin-regtest": { hrp: "rltc", pubKeyHash: 0x6f, scriptHash: [0x3a, 0xc4] },
};

/** Why address is not one of the network's (null when it is one). */
function utxoAddressProblem(p: UtxoAddressParams, address: string): string | null {
  const lower = address.toLowerCase();
  if (BECH32.test(lower)) {
    if (address !== lower && address !== address.toUpperCase()) return "mixes upper and lower case";
    const hrp = lower.slice(0, lower.lastIndexOf("1"));
    if (hrp !== p.hrp) return `belongs to another network (prefix ${hrp}, expected ${p.hrp})`;
    // v0 programs use bech32 (BIP173), v1+ bech32m (BIP350): the checksum tells which.
    const d = bech32.decodeUnsafe(lower, 90) ?? bech32m.decodeUnsafe(lower, 90);
    if (!d || d.words.length === 0) return "has an invalid bech32 checksum";
    const version = d.words[0]!;
    const isM = !bech32.decodeUnsafe(lower, 90);
    if (version > 16) return "has an invalid witness version";
    if ((version === 0) === isM) return version === 0 ? "is a v0 program with a bech32m checksum" : "is a v1+ program with a bech32 checksum";
    let program: number[];
    try {
      program = bech32.fromWords(d.words.slice(1));
    } catch {
      return "has an invalid witness program";
    }
    if (program.length < 2 || program.length > 40) return "has a witness program of invalid length";
    if (version === 0 && program.length !== 20 && program.length !== 32) return "has a v0 witness program of invalid length";
    return null;
  }
  if (!BASE58.test(address) || address.length < 26 || address.length > 35) return "is not a valid address for this network";
  let payload: Uint8Array;
  try {
    payload = bs58check.decode(address);
  } catch {
    return "has an invalid base58check checksum";
  }
  if (payload.length !== 21) return "is not a valid address for this network";
  const v = payload[0]!;
  if (v !== p.pubKeyHash && !p.scriptHash.includes(v)) return `belongs to another network (version byte 0x${v.toString(16).padStart(2, "0")})`;
  return null;
}

export function validateRefundAddress(family: ChainFamily, network: string, address: string): string {
  const fail = (why: string): never => {
    throw new PonteError("INVALID_ADDRESS", `refund_address ${why}`, { field: "refund_address", family });
  };
  if (address.length === 0 || address.length > 128) fail("must be 1 to 128 characters");
  switch (family) {
    case "evm":
      if (!/^0x[0-9a-fA-F]{40}$/.test(address) || !isAddress(address)) fail("is not a valid EVM address (checksum?)");
      return address;
    case "utxo": {
      const params = UTXO_NETWORKS[network];
      if (!params) return fail(`cannot be checked: no address parameters for network ${network}`);
      const problem = utxoAddressProblem(params, address);
      if (problem) fail(problem);
      return BECH32.test(address.toLowerCase()) ? address.toLowerCase() : address;
    }
    case "solana":
      if (!BASE58.test(address) || address.length < 32 || address.length > 44) fail("is not a valid Solana address");
      return address;
  }
}
