import { PonteError } from "@ponte/common";
import type { Sql } from "../db/index.js";

export interface PoolStatus {
  available: number;
  nextIndex: bigint;
  lowWater: number;
  target: number;
}

export interface NewAddress {
  address: string;
  derivationIndex: number;
  derivationPath: string;
  script: string;
}

export async function poolStatus(sql: Sql, network: string, lowWater: number, target: number): Promise<PoolStatus> {
  const [r] = await sql<{ available: bigint; max_index: bigint | null }[]>`
    SELECT count(*) FILTER (WHERE status = 'AVAILABLE') AS available, max(derivation_index) AS max_index
      FROM deposit_addresses WHERE network = ${network}`;
  return {
    available: Number(r?.available ?? 0n),
    nextIndex: r?.max_index === null || r?.max_index === undefined ? -1n : r.max_index + 1n,
    lowWater,
    target,
  };
}

/** Idempotent: an address or index already stored is skipped. */
export async function addAddresses(sql: Sql, network: string, addresses: NewAddress[]): Promise<void> {
  if (addresses.length === 0) return;
  if (addresses.length > 5000) throw new PonteError("VALIDATION_ERROR", "At most 5000 addresses per call", {});
  for (const a of addresses) {
    if (!a.address || !a.derivationPath) {
      throw new PonteError("VALIDATION_ERROR", "Each address needs address and derivation_path", { address: a.address });
    }
  }
  await sql`
    INSERT INTO deposit_addresses (network, address, derivation_index, derivation_path, script)
    SELECT ${network}, a, i, p, s
      FROM unnest(${addresses.map((a) => a.address)}::text[], ${addresses.map((a) => a.derivationIndex)}::bigint[],
                  ${addresses.map((a) => a.derivationPath)}::text[], ${addresses.map((a) => a.script)}::text[]) AS t(a, i, p, s)
    ON CONFLICT DO NOTHING`;
}
