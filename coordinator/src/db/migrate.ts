import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import postgres from "postgres";

// Versioned SQL files in coordinator/migrations, named NNNN_name.sql. Each runs in its own
// transaction and is recorded in schema_migrations; a session advisory lock makes concurrent
// replicas wait for each other, and an applied file whose checksum changed stops start-up.
const DIR = new URL("../../migrations/", import.meta.url);
const LOCK_KEY = 7_404_656_101; // arbitrary, fixed: "ponte migrations"

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function listMigrations(): Migration[] {
  return readdirSync(DIR)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = readFileSync(new URL(f, DIR), "utf8");
      return {
        version: Number.parseInt(f.slice(0, 4), 10),
        name: f.slice(5, -4),
        sql,
        checksum: createHash("sha256").update(sql).digest("hex"),
      };
    });
}

/** Changes whenever a migration is added or edited (test templates are keyed by it). */
export const migrationsFingerprint = (): string =>
  listMigrations()
    .map((m) => `${m.version}:${m.checksum}`)
    .join(",");

export async function migrate(url: string, log: (msg: string, fields?: object) => void = () => {}): Promise<number[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const applied: number[] = [];
  try {
    const conn = await sql.reserve();
    try {
      await conn`SELECT pg_advisory_lock(${LOCK_KEY})`;
      try {
        await conn`CREATE TABLE IF NOT EXISTS schema_migrations (
          version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now())`;
        const done = new Map(
          (await conn<{ version: number; checksum: string }[]>`SELECT version, checksum FROM schema_migrations`).map(
            (r) => [r.version, r.checksum],
          ),
        );
        for (const m of listMigrations()) {
          const prior = done.get(m.version);
          if (prior !== undefined) {
            if (prior !== m.checksum) throw new Error(`Migration ${m.version}_${m.name} was edited after it was applied`);
            continue;
          }
          await conn.unsafe("BEGIN");
          try {
            await conn.unsafe(m.sql);
            await conn`INSERT INTO schema_migrations (version, name, checksum) VALUES (${m.version}, ${m.name}, ${m.checksum})`;
            await conn.unsafe("COMMIT");
          } catch (err) {
            await conn.unsafe("ROLLBACK");
            throw err;
          }
          applied.push(m.version);
          log("Applied migration", { version: m.version, name: m.name });
        }
      } finally {
        await conn`SELECT pg_advisory_unlock(${LOCK_KEY})`;
      }
    } finally {
      conn.release();
    }
  } finally {
    await sql.end();
  }
  return applied;
}
