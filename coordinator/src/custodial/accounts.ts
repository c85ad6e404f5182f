import { PonteError } from "@ponte/common";
import { getAddress } from "ethers";
import type { Sql, Tx } from "../db/index.js";
import type { AssetRegistry } from "../quote/types.js";
import { validateRefundAddress } from "../trade/address.js";

/**
 * A user's custodial wallet on one network: an address the network's agent derives from its own
 * seed on the custodial account path. Ponte records where it is (and which index), never a key;
 * the agent refuses an order from an address its seed does not give at that index.
 */
export interface CustodialAccount {
  userId: string;
  network: string;
  address: string;
  derivationIndex: number;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  user_id: string;
  network: string;
  address: string;
  derivation_index: bigint;
  created_at: Date;
  updated_at: Date;
}

const fromRow = (r: Row): CustodialAccount => ({
  userId: r.user_id,
  network: r.network,
  address: r.address,
  derivationIndex: Number(r.derivation_index),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const MAX_INDEX = 0x7fff_ffff;

export function createCustodialAccounts(common: { sql: Sql; registry: AssetRegistry }) {
  const { sql, registry } = common;

  function familyOf(network: string) {
    const asset = registry.byNetwork(network)[0];
    if (!asset) throw new PonteError("ASSET_NOT_FOUND", `No asset is listed on network ${network}`, { field: "network", network });
    return asset.family;
  }

  return {
    /**
     * Registers (or moves) a user's custodial wallet. An address or index already taken by another
     * user is refused: two users must never share a wallet.
     */
    async put(a: { userId: string; network: string; address: string; derivationIndex: number }): Promise<CustodialAccount> {
      if (!a.userId || a.userId.length > 128) throw new PonteError("VALIDATION_ERROR", "user_id must be 1 to 128 characters", { field: "user_id" });
      if (!Number.isInteger(a.derivationIndex) || a.derivationIndex < 0 || a.derivationIndex > MAX_INDEX) {
        throw new PonteError("VALIDATION_ERROR", `derivation_index must be an integer from 0 to ${MAX_INDEX}`, { field: "derivation_index" });
      }
      let address: string;
      try {
        const family = familyOf(a.network);
        address = validateRefundAddress(family, a.network, a.address);
        // One spelling per wallet, so that a second registration of the same one is recognised.
        if (family === "evm") address = getAddress(address.toLowerCase());
      } catch (err) {
        if (err instanceof PonteError && err.code === "INVALID_ADDRESS") {
          throw new PonteError("INVALID_ADDRESS", err.message.replace(/^refund_address/, "address"), { field: "address", network: a.network });
        }
        throw err;
      }
      return sql.begin(async (tx) => {
        const clash = await tx<{ user_id: string }[]>`
          SELECT user_id FROM custodial_accounts
           WHERE network = ${a.network} AND user_id <> ${a.userId}
             AND (address = ${address} OR derivation_index = ${a.derivationIndex})`;
        if (clash.length > 0) {
          throw new PonteError("INVALID_STATE", "That address or derivation index is another user's custodial wallet", {
            network: a.network,
            field: "address",
          });
        }
        const [row] = await tx<Row[]>`
          INSERT INTO custodial_accounts (network, user_id, address, derivation_index)
          VALUES (${a.network}, ${a.userId}, ${address}, ${a.derivationIndex})
          ON CONFLICT (network, user_id) DO UPDATE SET address = EXCLUDED.address, derivation_index = EXCLUDED.derivation_index,
            updated_at = CASE WHEN (custodial_accounts.address, custodial_accounts.derivation_index)
                                   IS DISTINCT FROM (EXCLUDED.address, EXCLUDED.derivation_index) THEN now()
                              ELSE custodial_accounts.updated_at END
          RETURNING *`;
        return fromRow(row!);
      });
    },

    async get(userId: string, network: string, db: Sql | Tx = sql): Promise<CustodialAccount> {
      const [row] = await db<Row[]>`SELECT * FROM custodial_accounts WHERE network = ${network} AND user_id = ${userId}`;
      if (!row) {
        throw new PonteError("CUSTODIAL_ACCOUNT_NOT_FOUND", `No custodial wallet is registered for this user on ${network}`, { network });
      }
      return fromRow(row);
    },
  };
}

export type CustodialAccounts = ReturnType<typeof createCustodialAccounts>;
