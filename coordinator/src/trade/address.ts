import { PonteError } from "@ponte/common";
import { isAddress } from "ethers";
import type { ChainFamily } from "../quote/types.js";

// Refund addresses are checked per chain family at trade creation, so a refund can never be
// ordered to an address the network cannot pay. EVM: hex with a valid EIP-55 checksum when
// mixed case. UTXO and Solana checks are by format here; the agents verify again before signing.
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;
const BECH32 = /^[a-z]{1,83}1[02-9ac-hj-np-z]{6,87}$/;

/** Bech32 prefixes per UTXO network, so an address of another network is refused. */
const UTXO_HRPS: Record<string, readonly string[]> = {
  bitcoin: ["bc"],
  "bitcoin-testnet": ["tb"],
  "bitcoin-regtest": ["bcrt"],
  litecoin: ["ltc"],
  "litecoin-testnet": ["tltc"],
  "litecoin-regtest": ["rltc"],
};

export function validateRefundAddress(family: ChainFamily, network: string, address: string): string {
  const hrps = UTXO_HRPS[network] ?? [];
  const fail = (why: string): never => {
    throw new PonteError("INVALID_ADDRESS", `refund_address ${why}`, { field: "refund_address", family });
  };
  if (address.length === 0 || address.length > 128) fail("must be 1 to 128 characters");
  switch (family) {
    case "evm":
      if (!/^0x[0-9a-fA-F]{40}$/.test(address) || !isAddress(address)) fail("is not a valid EVM address (checksum?)");
      return address;
    case "utxo": {
      const lower = address.toLowerCase();
      if (BECH32.test(lower) && (address === lower || address === address.toUpperCase())) {
        const hrp = lower.slice(0, lower.lastIndexOf("1"));
        if (hrps.length > 0 && !hrps.includes(hrp)) fail(`belongs to another network (prefix ${hrp})`);
        return lower;
      }
      if (BASE58.test(address) && address.length >= 26 && address.length <= 35) return address;
      return fail("is not a valid address for this network");
    }
    case "solana":
      if (!BASE58.test(address) || address.length < 32 || address.length > 44) fail("is not a valid Solana address");
      return address;
  }
}
