import { mnemonicToSeedSync } from "bip39";
import { payments } from "bitcoinjs-lib";
import { describe, expect, it } from "vitest";
import { CHAINS } from "../config/index.js";
import { bip32, createUtxoDeriver } from "./index.js";

const MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
const seed = mnemonicToSeedSync(MNEMONIC);

describe("BIP84 derivation", () => {
  it("matches the BIP84 test vectors on Bitcoin mainnet", () => {
    const d = createUtxoDeriver(seed, CHAINS.bitcoin);
    expect(d.derive(0)).toEqual({
      index: 0,
      address: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
      path: "m/84'/0'/0'/0/0",
      script: "0014c0cebcd6c3d3ca8c75dc5ec62ebe55330ef910e2",
    });
    expect(d.derive(1).address).toBe("bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g");
    // BIP84's account xpub, in its zpub form's key: the first change address of the vector.
    const change = bip32.fromSeed(seed).derivePath("m/84'/0'/0'/1/0");
    expect(payments.p2wpkh({ pubkey: change.publicKey }).address).toBe("bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el");
  });

  it("matches Litecoin Core's deriveaddresses on Litecoin mainnet (coin type 2)", () => {
    // Vectors from litecoind 0.21.2 `deriveaddresses` with the same seed's xprv.
    const d = createUtxoDeriver(seed, CHAINS.litecoin);
    expect(d.derive(0).address).toBe("ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh");
    expect(d.derive(1).address).toBe("ltc1qwlezpr3890hcp6vva9twqh27mr6edadreqvhnn");
    expect(d.derive(0).path).toBe("m/84'/2'/0'/0/0");
    const root = bip32.fromSeed(seed, CHAINS.litecoin.network);
    const net = CHAINS.litecoin.network;
    expect(payments.p2pkh({ pubkey: root.derivePath("m/44'/2'/0'/0/0").publicKey, network: net }).address).toBe("LUWPbpM43E2p7ZSh8cyTBEkvpHmr3cB8Ez");
    expect(payments.p2sh({ redeem: payments.p2wpkh({ pubkey: root.derivePath("m/49'/2'/0'/0/0").publicKey, network: net }), network: net }).address).toBe(
      "M7wtsL7wSHDBJVMWWhtQfTMSYYkyooAAXM",
    );
  });

  it("derives rltc1 addresses on Litecoin regtest (coin type 1)", () => {
    const d = createUtxoDeriver(seed, CHAINS["litecoin-regtest"]);
    expect(d.derive(0).address).toMatch(/^rltc1q/);
    expect(d.derive(0).path).toBe("m/84'/1'/0'/0/0");
    expect(() => d.derive(-1)).toThrow(RangeError);
  });
});
