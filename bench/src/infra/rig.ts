import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { BenchContext } from "../core/result.js";
import { startAnvilNode, type AnvilNode } from "./anvil.js";
import { connect, freshDatabase, type Sql } from "./postgres.js";

export interface AnvilRig {
  logDir: string;
  /** This run's own config files (a smoke run inside `npm test` may run beside a full one). */
  workDir: string;
  anvil: AnvilNode;
  db: Awaited<ReturnType<typeof freshDatabase>>;
  sql: Sql;
  /** Stopped in order when the run ends, failures ignored. */
  stops: (() => Promise<unknown>)[];
}

/** What B5–B7 run on: an anvil that mines only when asked, a fresh database; all torn down after `fn`. */
export async function withAnvilRig<T>(ctx: BenchContext, name: string, poolSize: number, fn: (rig: AnvilRig) => Promise<T>): Promise<T> {
  const logDir = join(ctx.cacheDir, "logs");
  mkdirSync(ctx.cacheDir, { recursive: true });
  const workDir = mkdtempSync(join(ctx.cacheDir, `run-${name}-`));
  const anvil = await startAnvilNode({ args: ["--no-mining"], logDir });
  const db = await freshDatabase();
  const sql = connect(db.url, poolSize);
  const stops: (() => Promise<unknown>)[] = [];
  try {
    return await fn({ logDir, workDir, anvil, db, sql, stops });
  } finally {
    for (const s of stops) await s().catch(() => {});
    await anvil.stop();
    rmSync(workDir, { recursive: true, force: true });
    await sql.end();
    await db.drop();
  }
}
