import { eventually, freePort } from "@ponte/common/testing";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { testDb } from "../_test/db.js";
import { createSql, type Sql } from "./index.js";
import { createDatabasePing, type DatabasePing } from "./ping.js";

// The database's connections are reset and new ones refused, as when its host fails over: a TCP
// relay in front of the test's Postgres drops every connection, stops and starts on the same port.
// These guard the patch in patches/postgres+3.4.9.patch as much as our own code.
let db: Awaited<ReturnType<typeof testDb>>;
let port: number;
let relay: Server | undefined;
const sockets = new Set<Socket>();
let ping: DatabasePing;
// One connection, so the pool's reconnects and backoff act on the connection under test.
let pool: Sql;

async function startRelay() {
  const target = new URL(db.url);
  relay = createServer((client) => {
    const server = createConnection(Number(target.port || 5432), target.hostname);
    for (const s of [client, server]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(server).pipe(client);
  });
  await new Promise<void>((resolve) => relay!.listen(port, "127.0.0.1", resolve));
}
function dropConnections() {
  for (const s of sockets) s.resetAndDestroy();
}
async function stopRelay() {
  const closed = new Promise<void>((resolve) => relay!.close(() => resolve()));
  dropConnections();
  await closed;
}
/** The query's outcome, or "hung" if it has not settled within 5 s. */
async function settled(q: Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("hung"), 5_000)));
  const outcome = q.then(
    () => "fulfilled",
    (e: { code?: string }) => `rejected ${e.code ?? "?"}`,
  );
  try {
    return await Promise.race([outcome, hung]);
  } finally {
    clearTimeout(timer);
  }
}

beforeAll(async () => {
  db = await testDb();
  port = await freePort();
  await startRelay();
  const viaRelay = new URL(db.url);
  viaRelay.host = `127.0.0.1:${port}`;
  ping = createDatabasePing(viaRelay.toString(), { timeoutMs: 500 });
  pool = createSql(viaRelay.toString(), { max: 1 });
  await db.sql`CREATE TABLE outage_probe (n int NOT NULL)`;
});
beforeEach(async () => {
  expect(await pool`SELECT 1 AS one`).toEqual([{ one: 1 }]);
});
afterAll(async () => {
  await ping?.end();
  await pool?.end({ timeout: 1 });
  await stopRelay().catch(() => {});
  await db?.close();
});

describe("a database outage", () => {
  it("settles every query on the lost connection (none hangs), and the pool is back within seconds", async () => {
    await stopRelay();
    try {
      // postgres.js 3.4.9 unpatched: the first is rejected, the second hangs for good.
      const outcomes = [];
      for (let i = 0; i < 3; i++) outcomes.push(await settled(pool`SELECT 1`.execute()));
      expect(outcomes.every((o) => o.startsWith("rejected "))).toBe(true);
      // Each refused attempt grows the pool's backoff (3^n/100 s jittered; up to 20 s uncapped).
      for (let i = 0; i < 4; i++) expect(await settled(pool`SELECT 1`.execute())).toMatch(/^rejected /);
    } finally {
      await startRelay();
    }
    const back = Date.now();
    expect(await pool`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    // Capped at 2 s; uncapped, the next attempt would have waited up to 7 s.
    expect(Date.now() - back).toBeLessThan(3_000);
  });

  it("a transaction whose connection dropped writes nothing, even if its callback goes on afterwards", async () => {
    let resume!: () => void;
    const gate = new Promise<void>((r) => (resume = r));
    let inserted!: () => void;
    const firstInsert = new Promise<void>((r) => (inserted = r));
    let late = "not run";
    const tx = pool.begin(async (t) => {
      await t`INSERT INTO outage_probe VALUES (1)`;
      inserted();
      await gate;
      late = await settled(t`INSERT INTO outage_probe VALUES (2)`.execute());
    });
    await firstInsert;
    dropConnections();
    expect(await settled(tx)).toMatch(/^rejected /);
    // The pool's one connection reconnects for other work before the callback goes on.
    expect(await pool`SELECT 2 AS two`).toEqual([{ two: 2 }]);
    resume();
    await eventually(() => expect(late).toMatch(/^rejected /));
    expect(await db.sql`SELECT n FROM outage_probe`).toEqual([]);
  });

  it("the readiness ping answers false within its timeout, one at a time, and true once the database is back", async () => {
    expect(await ping.ping()).toBe(true);
    await stopRelay();
    try {
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        expect(await ping.ping()).toBe(false);
        expect(Date.now() - started).toBeLessThan(900);
      }
      expect(await Promise.all([ping.ping(), ping.ping()])).toEqual([false, false]);
    } finally {
      await startRelay();
    }
    await eventually(async () => expect(await ping.ping()).toBe(true), { timeout: 2_000 });
  });
});
