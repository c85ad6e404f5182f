import { createTestDatabase, type TestDatabase } from "@ponte/common/testing";
import { createSql, type Sql } from "../db/index.js";
import { migrate, migrationsFingerprint } from "../db/migrate.js";

/** A database of this file's own, cloned from the migrated template, with a client. */
export async function testDb(): Promise<TestDatabase & { sql: Sql; close: () => Promise<void> }> {
  const db = await createTestDatabase({ fingerprint: migrationsFingerprint(), migrate: (url) => migrate(url).then(() => undefined) });
  const sql = createSql(db.url, { max: 20 });
  return {
    ...db,
    sql,
    close: async () => {
      await sql.end({ timeout: 5 });
      await db.drop();
    },
  };
}
