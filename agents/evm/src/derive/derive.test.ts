import { describe, expect, it } from "vitest";
import { createEvmDeriver } from "./index.js";

describe("EVM derivation (BIP44 m/44'/60'/0'/0/i)", () => {
  it("matches the well-known vectors of the test mnemonic", () => {
    const d = createEvmDeriver("test test test test test test test test test test test junk");
    expect(d.derive(0)).toEqual({ index: 0, address: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", path: "m/44'/60'/0'/0/0" });
    expect(d.derive(1).address).toBe("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    expect(d.derive(2).address).toBe("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
    expect(d.derive(9).address).toBe("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720");
  });

  it("matches the vector of the BIP39 'abandon … about' mnemonic", () => {
    const d = createEvmDeriver("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about");
    expect(d.derive(0).address).toBe("0x9858EfFD232B4033E47d90003D41EC34EcaEda94");
  });

  it("refuses indices outside BIP32's non-hardened range", () => {
    const d = createEvmDeriver("test test test test test test test test test test test junk");
    expect(() => d.derive(-1)).toThrow(RangeError);
    expect(() => d.derive(2 ** 31)).toThrow(RangeError);
    expect(d.derive(2 ** 31 - 1).path).toBe("m/44'/60'/0'/0/2147483647");
  });
});
