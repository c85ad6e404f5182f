// Output scripts to addresses, read from the scriptPubKey hex. bitcoinjs-lib's
// address.fromOutputScript tries every payment type with full validation (~150 µs an output);
// catch-up reads every output of every block, so the standard templates are recognised by their
// fixed bytes here and only the address is encoded (bech32/bech32m, base58check).
import { bech32, bech32m } from "bech32";
import bs58check from "bs58check";
import type { ChainParams } from "../config/index.js";

export type OutputType = "p2wpkh" | "p2wsh" | "p2tr" | "p2pkh" | "p2sh";

/** The standard template of a scriptPubKey (lower-case hex, as the node gives it), else null. */
export function outputType(scriptHex: string): OutputType | null {
  switch (scriptHex.length) {
    case 44: // OP_0 <20>
      return scriptHex.startsWith("0014") ? "p2wpkh" : null;
    case 68: // OP_0 <32> | OP_1 <32>
      return scriptHex.startsWith("0020") ? "p2wsh" : scriptHex.startsWith("5120") ? "p2tr" : null;
    case 50: // OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG
      return scriptHex.startsWith("76a914") && scriptHex.endsWith("88ac") ? "p2pkh" : null;
    case 46: // OP_HASH160 <20> OP_EQUAL
      return scriptHex.startsWith("a914") && scriptHex.endsWith("87") ? "p2sh" : null;
    default:
      return null;
  }
}

/** The bytes of hex, or null when it is not all hex digits (Buffer.from would stop short silently). */
function bytes(hex: string, length: number): Buffer | null {
  const b = Buffer.from(hex, "hex");
  return b.length === length ? b : null;
}

function segwit(hrp: string, version: 0 | 1, programHex: string, length: number): string | null {
  const program = bytes(programHex, length);
  if (!program) return null;
  const words = bech32.toWords(program);
  words.unshift(version);
  return (version === 0 ? bech32 : bech32m).encode(hrp, words);
}

function base58(prefix: number, hashHex: string): string | null {
  const hash = bytes(hashHex, 20);
  if (!hash) return null;
  const payload = Buffer.allocUnsafe(21);
  payload[0] = prefix;
  hash.copy(payload, 1);
  return bs58check.encode(payload);
}

/**
 * The address an output pays, when its script is one of the types in accept (the agent's: P2WPKH
 * always, P2PKH and P2SH — P2SH-P2WPKH among them — when configured), else null. Same addresses
 * as bitcoinjs-lib's fromOutputScript (and Bitcoin Core's) for these templates. Attribution is by
 * scriptPubKey: the node's own address fields differ between versions (`address` vs `addresses`).
 */
export function createScriptReader(chain: ChainParams, accept: readonly OutputType[]): (scriptHex: string) => string | null {
  const { bech32: hrp, pubKeyHash, scriptHash } = chain.network;
  if (pubKeyHash > 0xff || scriptHash > 0xff) throw new RangeError(`${chain.name}: base58 prefixes longer than one byte are not supported`);
  const accepted = new Set(accept);
  return (scriptHex) => {
    const type = outputType(scriptHex);
    if (type === null || !accepted.has(type)) return null;
    switch (type) {
      case "p2wpkh":
        return segwit(hrp, 0, scriptHex.slice(4), 20);
      case "p2wsh":
        return segwit(hrp, 0, scriptHex.slice(4), 32);
      case "p2tr":
        return segwit(hrp, 1, scriptHex.slice(4), 32);
      case "p2pkh":
        return base58(pubKeyHash, scriptHex.slice(6, 46));
      case "p2sh":
        return base58(scriptHash, scriptHex.slice(4, 44));
    }
  };
}
