import { address as baddress, initEccLib } from "bitcoinjs-lib";
import fc from "fast-check";
import * as ecc from "tiny-secp256k1";
import { describe, expect, it } from "vitest";
import { CHAIN_NAMES, CHAINS } from "../config/index.js";
import { outputScript } from "../derive/index.js";
import { createScriptReader, outputType, type OutputType } from "./index.js";

// bitcoinjs-lib reads P2TR only with an ECC library (and then only for x-only keys on the curve).
initEccLib(ecc);

const ALL: OutputType[] = ["p2wpkh", "p2wsh", "p2tr", "p2pkh", "p2sh"];
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bitcoinjs = (scriptHex: string, name: (typeof CHAIN_NAMES)[number]): string | null => {
  try {
    return baddress.fromOutputScript(Buffer.from(scriptHex, "hex"), CHAINS[name].network);
  } catch {
    return null; // no address for this script: what the reader must say too
  }
};

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const xOnlyKey = bytes(32)
  .filter((d) => ecc.isPrivate(d))
  .map((d) => ecc.xOnlyPointFromScalar(d));
/** A standard output script of each template, from random hashes (P2TR: a key on the curve). */
const standardScript = fc.oneof(
  bytes(20).map((h) => `0014${hex(h)}`),
  bytes(32).map((h) => `0020${hex(h)}`),
  xOnlyKey.map((k) => `5120${hex(k)}`),
  bytes(20).map((h) => `76a914${hex(h)}88ac`),
  bytes(20).map((h) => `a914${hex(h)}87`),
);
const network = fc.constantFrom(...CHAIN_NAMES);

describe("script reader", () => {
  it("gives bitcoinjs-lib's address for every standard template on every network", () => {
    const readers = Object.fromEntries(CHAIN_NAMES.map((n) => [n, createScriptReader(CHAINS[n], ALL)]));
    fc.assert(
      fc.property(standardScript, network, (script, name) => {
        const ours = readers[name]!(script);
        expect(ours).not.toBeNull();
        expect(ours).toBe(bitcoinjs(script, name));
      }),
      { numRuns: 1_500 },
    );
  });

  it("never names an address bitcoinjs-lib would not, for any script", () => {
    const readers = Object.fromEntries(CHAIN_NAMES.map((n) => [n, createScriptReader(CHAINS[n], ALL)]));
    // Template prefixes and suffixes around random bytes of any length, and plain random bytes.
    const prefix = fc.constantFrom("", "0014", "0020", "5120", "5220", "76a914", "a914", "6a", "21");
    const suffix = fc.constantFrom("", "88ac", "87", "ac", "00");
    const script = fc.tuple(prefix, fc.uint8Array({ maxLength: 40 }), suffix).map(([p, b, s]) => `${p}${hex(b)}${s}`);
    fc.assert(
      fc.property(script, network, (s, name) => {
        const ours = readers[name]!(s);
        if (ours !== null) expect(ours).toBe(bitcoinjs(s, name));
        if (outputType(s) === null) expect(ours).toBeNull();
      }),
      { numRuns: 5_000 },
    );
  });

  it("reads P2WPKH always, P2PKH and P2SH only when configured", () => {
    const net = CHAINS.litecoin;
    const script = (a: string) => hex(outputScript(a, net));
    const p2wpkhOnly = createScriptReader(net, ["p2wpkh"]);
    const all = createScriptReader(net, ["p2wpkh", "p2pkh", "p2sh"]);
    expect(p2wpkhOnly(script("ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh"))).toBe("ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh");
    expect(p2wpkhOnly(script("LUWPbpM43E2p7ZSh8cyTBEkvpHmr3cB8Ez"))).toBeNull();
    expect(all(script("LUWPbpM43E2p7ZSh8cyTBEkvpHmr3cB8Ez"))).toBe("LUWPbpM43E2p7ZSh8cyTBEkvpHmr3cB8Ez");
    expect(all(script("M7wtsL7wSHDBJVMWWhtQfTMSYYkyooAAXM"))).toBe("M7wtsL7wSHDBJVMWWhtQfTMSYYkyooAAXM");
    expect(all("6a0401020304")).toBeNull(); // OP_RETURN
    // The same key hash on Bitcoin is a bc1 address, not ltc1.
    expect(createScriptReader(CHAINS.bitcoin, ["p2wpkh"])(script("ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh"))).toMatch(/^bc1q/);
  });

  it("matches the BIP173/BIP350 and base58 vectors and credits no type that is not accepted", () => {
    const btc = createScriptReader(CHAINS.bitcoin, ALL);
    // BIP173 P2WPKH and P2WSH, BIP350/BIP86 P2TR (lower case, as the node prints them).
    expect(btc("0014751e76e8199196d454941c45d1b3a323f1433bd6")).toBe("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
    expect(btc("00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262")).toBe("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3");
    expect(btc("5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c")).toBe("bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr");
    // Satoshi's genesis key hash and a BIP16 P2SH.
    expect(btc("76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac")).toBe("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa");
    expect(btc("a914e9c3dd0c07aac76179ebc76a6c78d4d67c6c160a87")).toBe("3P14159f73E4gFr7JterCCQh9QjiTjiZrG");
    const p2wpkhOnly = createScriptReader(CHAINS.bitcoin, ["p2wpkh"]);
    for (const s of ["00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262", "76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"]) {
      expect(p2wpkhOnly(s)).toBeNull();
    }
    // Not hex: Buffer.from would stop at the first bad digit; the reader refuses it.
    expect(btc(`0014${"zz".repeat(20)}`)).toBeNull();
    // Witness v2 (a future version), bare multisig, P2PK: no credited address.
    expect(btc(`5214${"11".repeat(20)}`)).toBeNull();
    expect(btc(`5121${"02".repeat(33)}51ae`)).toBeNull();
    expect(btc(`21${"02".repeat(33)}ac`)).toBeNull();
  });
});
