// Runs the stack's processes. Each child gets its own process group (detached), so a Ctrl-C in
// the terminal reaches only the supervisor, which then stops the children in reverse start order
// (the gateway before the coordinator, Postgres last) and signals whole groups, so helpers a child
// spawned (Postgres backends) go too.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface ChildSpec {
  name: string;
  cmd: string;
  args?: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as another user (Postgres refuses to run as root). */
  uid?: number;
  gid?: number;
  /** What asks this program to stop cleanly (Postgres: SIGINT, its "fast" shutdown). */
  stopSignal?: NodeJS.Signals;
  /** After this, the group gets SIGKILL. */
  stopTimeoutMs?: number;
}

/** A pino line, when the line is one. */
export interface LogRecord {
  level?: number;
  msg?: string;
  [k: string]: unknown;
}

export interface Supervised {
  readonly name: string;
  readonly pid: number;
  readonly cmdline: string[];
  /** The last lines of output (both streams). */
  readonly tail: string[];
  readonly exitCode: number | null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first line (past or future) that matches; rejects if the child exits first. */
  waitFor(match: (line: string, rec: LogRecord | undefined) => boolean, what: string, timeoutMs?: number): Promise<string>;
}

export interface SupervisorOptions {
  logDir: string;
  /** Called for every output line; decides what reaches the terminal. */
  onLine?: (name: string, line: string, rec: LogRecord | undefined) => void;
  /** A child exited while nothing asked it to. */
  onUnexpectedExit?: (child: Supervised, code: number | null, signal: NodeJS.Signals | null) => void;
}

export class ChildExitedError extends Error {
  constructor(
    readonly child: string,
    readonly code: number | null,
    what: string,
  ) {
    super(`${child} exited (${code ?? "signal"}) before ${what}`);
    this.name = "ChildExitedError";
  }
}

const TAIL = 200;

export function parseLine(line: string): LogRecord | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === "object" ? (v as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** True when some process of the group still exists. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

export function createSupervisor(opts: SupervisorOptions) {
  const children: { spec: ChildSpec; proc: ChildProcess; self: Supervised; log: WriteStream }[] = [];
  let stopping = false;

  function start(spec: ChildSpec): Supervised {
    if (stopping) throw new Error(`not starting ${spec.name}: the stack is stopping`);
    mkdirSync(opts.logDir, { recursive: true });
    const log = createWriteStream(join(opts.logDir, `${spec.name}.log`), { flags: "a" });
    log.write(`\n===== ${new Date().toISOString()} ${spec.cmd} ${(spec.args ?? []).join(" ")}\n`);
    const proc = spawn(spec.cmd, spec.args ?? [], {
      env: spec.env,
      cwd: spec.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      ...(spec.uid !== undefined ? { uid: spec.uid, gid: spec.gid } : {}),
    });
    // spawn reports ENOENT/EACCES as an event (and no pid); without a listener it would crash us.
    proc.once("error", (err) => log.write(`===== spawn failed: ${err.message}\n`));
    if (proc.pid === undefined) throw new Error(`could not start ${spec.name} (${spec.cmd})`);
    const tail: string[] = [];
    const waiters = new Set<{ match: (l: string, r: LogRecord | undefined) => boolean; resolve: (l: string) => void }>();
    let exitCode: number | null = null;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      proc.once("exit", (code, signal) => {
        exitCode = code ?? 128;
        resolve({ code, signal });
      });
    });
    const onLine = (line: string) => {
      log.write(`${line}\n`);
      tail.push(line);
      if (tail.length > TAIL) tail.shift();
      const rec = parseLine(line);
      for (const w of waiters) if (w.match(line, rec)) w.resolve(line);
      opts.onLine?.(spec.name, line, rec);
    };
    for (const stream of [proc.stdout, proc.stderr]) {
      let buf = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    const self: Supervised = {
      name: spec.name,
      pid: proc.pid,
      cmdline: [spec.cmd, ...(spec.args ?? [])],
      tail,
      get exitCode() {
        return exitCode;
      },
      exited,
      waitFor(match, what, timeoutMs = 30_000) {
        const past = tail.find((l) => match(l, parseLine(l)));
        if (past !== undefined) return Promise.resolve(past);
        return new Promise<string>((resolve, reject) => {
          const w = { match, resolve: (l: string) => done(() => resolve(l)) };
          const timer = setTimeout(() => done(() => reject(new Error(`${spec.name} did not report ${what} within ${timeoutMs / 1000} s`))), timeoutMs);
          void exited.then(({ code }) => done(() => reject(new ChildExitedError(spec.name, code, what))));
          let settled = false;
          function done(fn: () => void) {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            waiters.delete(w);
            fn();
          }
          waiters.add(w);
        });
      },
    };
    void exited.then(({ code, signal }) => {
      log.write(`===== exited code=${code} signal=${signal}\n`);
      if (!stopping) opts.onUnexpectedExit?.(self, code, signal);
    });
    children.push({ spec, proc, self, log });
    return self;
  }

  async function stopOne(c: (typeof children)[number]): Promise<void> {
    const pgid = c.self.pid;
    const timeout = c.spec.stopTimeoutMs ?? 15_000;
    if (c.self.exitCode === null) {
      signalGroup(pgid, c.spec.stopSignal ?? "SIGTERM");
      const done = await Promise.race([c.self.exited.then(() => true), sleep(timeout).then(() => false)]);
      if (!done) {
        process.stderr.write(`  ${c.spec.name} did not stop within ${timeout / 1000} s; killing it\n`);
        signalGroup(pgid, "SIGKILL");
        await c.self.exited;
      }
    }
    // The leader is gone; anything it left in its group (forked helpers) goes now.
    for (let i = 0; i < 40 && groupAlive(pgid); i++) await sleep(50);
    if (groupAlive(pgid)) signalGroup(pgid, "SIGKILL");
    await new Promise<void>((r) => c.log.end(r));
  }

  return {
    start,
    get children(): readonly Supervised[] {
      return children.map((c) => c.self);
    },
    get stopping() {
      return stopping;
    },
    /** Stops every child, last started first. Safe to call more than once. */
    async stopAll(onEach?: (name: string) => void): Promise<void> {
      stopping = true;
      for (const c of [...children].reverse()) {
        onEach?.(c.spec.name);
        await stopOne(c);
      }
    },
    /** Second Ctrl-C: no more waiting. */
    killAll(): void {
      stopping = true;
      for (const c of children) if (c.self.exitCode === null || groupAlive(c.self.pid)) signalGroup(c.self.pid, "SIGKILL");
    },
  };
}

export type Supervisor = ReturnType<typeof createSupervisor>;
