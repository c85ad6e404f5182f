import { PonteError } from "@ponte/common";
import { describe, expect, it } from "vitest";
import { validateRefundAddress } from "./address.js";

const refused = (network: string, address: string): string => {
  try {
    validateRefundAddress("utxo", network, address);
  } catch (err) {
    if (err instanceof PonteError && err.code === "INVALID_ADDRESS") return err.message;
    throw err;
  }
  throw new Error(`${address} was accepted on ${network}`);
};

describe("refund addresses of UTXO networks", () => {
  it("accepts each network's own addresses (segwit v0/v1, P2PKH, P2SH)", () => {
    const ok: [string, string][] = [
      ["bitcoin", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"], // BIP84 vector
      ["bitcoin", "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"], // BIP173, upper case
      ["bitcoin", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"], // BIP350 v1 (bech32m)
      ["bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"],
      ["bitcoin", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"],
      ["bitcoin-testnet", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"],
      ["litecoin", "ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh"], // litecoind deriveaddresses
      ["litecoin", "LUWPbpM43E2p7ZSh8cyTBEkvpHmr3cB8Ez"],
      ["litecoin", "M7wtsL7wSHDBJVMWWhtQfTMSYYkyooAAXM"],
      ["litecoin-regtest", "rltc1q6rz28mcfaxtmd6v789l9rrlrusdprr9puuzgkg"],
    ];
    for (const [network, a] of ok) expect(validateRefundAddress("utxo", network, a), `${network} ${a}`).toBe(/^[A-Z0-9]+$/.test(a) && a.startsWith("BC1") ? a.toLowerCase() : a);
  });

  it("refuses addresses of another network, bad checksums and malformed programs", () => {
    expect(refused("litecoin", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu")).toContain("another network (prefix bc, expected ltc)");
    expect(refused("litecoin-regtest", "ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh")).toContain("another network");
    expect(refused("bitcoin", "ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh")).toContain("another network");
    // Base58 with another network's version byte: a Bitcoin P2PKH on Litecoin, a Litecoin one on Bitcoin.
    expect(refused("litecoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")).toContain("version byte 0x00");
    expect(refused("bitcoin", "LUWPbpM43E2p7ZSh8cyTBEkvpHmr3cB8Ez")).toContain("version byte 0x30");
    expect(refused("litecoin", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn")).toContain("version byte 0x6f"); // testnet P2PKH
    // One character changed: the checksum fails.
    expect(refused("bitcoin", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyv")).toContain("checksum");
    expect(refused("bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb")).toContain("checksum");
    // BIP350: a v1 program with a bech32 (not bech32m) checksum, and mixed case.
    expect(refused("bitcoin", "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx")).toContain("bech32 checksum");
    expect(refused("bitcoin", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306FYU")).toContain("mixes upper and lower case");
    expect(refused("dogecoin", "DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L")).toContain("no address parameters");
  });
});
