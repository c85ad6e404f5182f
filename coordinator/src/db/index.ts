import postgres from "postgres";

export type Sql = postgres.Sql<{ bigint: bigint }>;
export type Tx = postgres.TransactionSql<{ bigint: bigint }>;
export type Db = Sql | Tx;

/** int8 → bigint at the edge; numeric stays a string and is parsed where it is read. */
export function createSql(url: string, opts: { max?: number; applicationName?: string } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    types: { bigint: postgres.BigInt },
    onnotice: () => {},
    connection: { application_name: opts.applicationName ?? "ponte-coordinator" },
  }) as unknown as Sql;
}

export const isUniqueViolation = (err: unknown, constraint?: string): boolean =>
  err instanceof postgres.PostgresError && err.code === "23505" && (!constraint || err.constraint_name === constraint);

export { migrate, migrationsFingerprint, listMigrations } from "./migrate.js";
