import postgres from "postgres";

export type Sql = postgres.Sql<{ bigint: bigint }>;
export type Tx = postgres.TransactionSql<{ bigint: bigint }>;
export type Db = Sql | Tx;
/** A piece of SQL built with the tagged template, embedded in another statement. */
export type Fragment = postgres.Fragment;

/** int8 → bigint at the edge; numeric stays a string and is parsed where it is read. */
export function createSql(url: string, opts: { max?: number; applicationName?: string } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    types: { bigint: postgres.BigInt },
    onnotice: () => {},
    // postgres.js's backoff grows 3^n/100 s up to 20 s, shared by the pool: after an outage the
    // coordinator would sit idle for up to 20 s. Capped at 2 s, it resumes within seconds.
    backoff: reconnectBackoff,
    // JIT compiles a query plan costed above jit_above_cost: hundreds of ms for the watch snapshot
    // and the metrics' counts, which run in tens (bench/README.md, B8). Short OLTP statements
    // never gain from it.
    connection: { application_name: opts.applicationName ?? "ponte-coordinator", jit: "off" },
  }) as unknown as Sql;
}

/** Seconds before the pool's next connection attempt, after `retries` failed ones (jittered). */
export const reconnectBackoff = (retries: number): number => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 2);

export const isUniqueViolation = (err: unknown, constraint?: string): boolean =>
  err instanceof postgres.PostgresError && err.code === "23505" && (!constraint || err.constraint_name === constraint);

export { createDatabasePing, type DatabasePing } from "./ping.js";
export { migrate, migrationsFingerprint, listMigrations } from "./migrate.js";
