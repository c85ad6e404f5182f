import { PonteError } from "@ponte/common";
import type { Db } from "../db/index.js";

export interface Identity {
  network: string;
  agentId: string;
  leaseEpoch: bigint;
}

/**
 * Acquire or renew the network's lease in one statement: granted when free, lapsed, or already
 * ours. The epoch grows whenever the holder changes (or a lapsed lease is taken back), and every
 * later call must carry it — a fencing token against an agent that lost its lease unawares.
 */
export async function acquireLease(
  db: Db,
  network: string,
  agentId: string,
  ttlMs: number,
): Promise<{ granted: boolean; epoch: bigint; holder: string }> {
  const rows = await db<{ epoch: bigint; holder: string }[]>`
    INSERT INTO agent_leases AS l (network, holder, epoch, expires_at)
    VALUES (${network}, ${agentId}, 1, now() + make_interval(secs => ${ttlMs / 1000}))
    ON CONFLICT (network) DO UPDATE SET
      epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
      acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.acquired_at ELSE now() END,
      holder = EXCLUDED.holder,
      expires_at = EXCLUDED.expires_at,
      renewed_at = now()
    WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
    RETURNING epoch, holder`;
  if (rows[0]) return { granted: true, epoch: rows[0].epoch, holder: rows[0].holder };
  const [cur] = await db<{ epoch: bigint; holder: string }[]>`SELECT epoch, holder FROM agent_leases WHERE network = ${network}`;
  return { granted: false, epoch: 0n, holder: cur?.holder ?? "" };
}

export async function releaseLease(db: Db, id: Identity): Promise<void> {
  await db`UPDATE agent_leases SET expires_at = now() WHERE network = ${id.network} AND holder = ${id.agentId} AND epoch = ${id.leaseEpoch.toString()}`;
}

/**
 * Refuses a caller that does not hold the network's current lease. `lock` serialises with a
 * takeover. The statement is sent at once, so statements a caller pipelines behind it run after it.
 */
export async function assertLease(db: Db, id: Identity, lock = false): Promise<void> {
  if (!id.network || !id.agentId) throw new PonteError("VALIDATION_ERROR", "identity.network and identity.agent_id are required", {});
  const rows = lock
    ? await db<{ ok: boolean }[]>`SELECT holder = ${id.agentId} AND epoch = ${id.leaseEpoch.toString()} AND expires_at > now() AS ok
                                    FROM agent_leases WHERE network = ${id.network} FOR UPDATE`.execute()
    : await db<{ ok: boolean }[]>`SELECT holder = ${id.agentId} AND epoch = ${id.leaseEpoch.toString()} AND expires_at > now() AS ok
                                    FROM agent_leases WHERE network = ${id.network}`.execute();
  if (!rows[0]?.ok) {
    throw new PonteError("LEASE_LOST", "This agent does not hold the network's lease", { network: id.network });
  }
}
