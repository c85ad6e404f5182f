import { createTestDatabase, withDatabase, type TestDatabase } from "@ponte/common/testing";
import { migrate, migrationsFingerprint } from "@ponte/coordinator";
import postgres from "postgres";

export type Sql = postgres.Sql<{ bigint: bigint }>;

export const connect = (url: string, max = 4): Sql =>
  postgres(url, { max, types: { bigint: postgres.BigInt }, onnotice: () => {}, connection: { application_name: "ponte-bench" } }) as unknown as Sql;

/** A fresh database cloned from the migrated template (the same one the tests use). */
export const freshDatabase = (): Promise<TestDatabase> =>
  createTestDatabase({ fingerprint: migrationsFingerprint(), migrate: (url) => migrate(url).then(() => undefined) });

/**
 * A database kept between runs (large fixtures that take a minute to build), named by what is in
 * it: a change of migrations or of the fixture makes a new one. `build` fills it once.
 */
export async function cachedDatabase(o: { adminUrl: string; key: string; build: (url: string) => Promise<void>; log: (m: string) => void }): Promise<string> {
  const name = `ponte_bench_${o.key}`;
  const admin = postgres(o.adminUrl, { max: 1, onnotice: () => {} });
  try {
    const exists = await admin`SELECT 1 FROM pg_database WHERE datname = ${name}`;
    if (exists.length > 0) return withDatabase(o.adminUrl, name);
    o.log(`building the cached database ${name} (once; about a minute)`);
    const building = `${name}_building`;
    await admin.unsafe(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`);
    const tpl = await freshDatabase();
    try {
      await admin.unsafe(`CREATE DATABASE ${building} TEMPLATE ${tpl.name}`);
    } finally {
      await tpl.drop();
    }
    await o.build(withDatabase(o.adminUrl, building));
    await admin.unsafe(`ALTER DATABASE ${building} RENAME TO ${name}`);
    return withDatabase(o.adminUrl, name);
  } finally {
    await admin.end();
  }
}
