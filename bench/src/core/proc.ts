import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

// Child processes of the benchmark: the real Ponte processes (coordinator, gateway, agent) and
// the baselines. Their output goes to a log file (not a pipe this process would have to drain
// while it measures), which is also where readiness is read from.

export interface Child {
  name: string;
  pid: number;
  logFile: string;
  child: ChildProcess;
  readonly exitCode: number | null;
  /** The log so far. */
  log(): string;
  /** Waits for a line matching `match` (from byte `from` of the log); returns it. */
  waitFor(match: string | RegExp, opts?: { timeoutMs?: number; from?: number }): Promise<string>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<Child>();
let hooked = false;

/** Kills every child this process started (only those) when it exits or is interrupted. */
function hookExit() {
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const c of running) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.on("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export async function startChild(o: {
  name: string;
  cmd?: string;
  args: string[];
  env?: Record<string, string | undefined>;
  logDir: string;
  ready?: string | RegExp;
  timeoutMs?: number;
}): Promise<Child> {
  hookExit();
  mkdirSync(o.logDir, { recursive: true });
  const logFile = join(o.logDir, `${o.name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}.log`);
  const fd = openSync(logFile, "a");
  const child = spawn(o.cmd ?? process.execPath, o.args, { env: { ...process.env, ...o.env }, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  let exitCode: number | null = null;
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) => {
      exitCode = code ?? (signal ? 128 : null);
      running.delete(self);
      resolve(exitCode);
    }),
  );
  const log = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  const self: Child = {
    name: o.name,
    pid: child.pid!,
    logFile,
    child,
    get exitCode() {
      return exitCode;
    },
    log,
    async waitFor(match, w = {}) {
      const deadline = Date.now() + (w.timeoutMs ?? o.timeoutMs ?? 30_000);
      for (;;) {
        const text = log().slice(w.from ?? 0);
        const line = text.split("\n").find((l) => (typeof match === "string" ? l.includes(match) : match.test(l)));
        if (line !== undefined) return line;
        if (exitCode !== null) throw new Error(`${o.name} exited (${exitCode}) before logging ${match}; log ${logFile}:\n${tail(text)}`);
        if (Date.now() > deadline) throw new Error(`${o.name} did not log ${match} in time; log ${logFile}:\n${tail(text)}`);
        await sleep(25);
      }
    },
    exited,
    async kill(signal = "SIGTERM") {
      if (exitCode === null) {
        child.kill(signal);
        const t = setTimeout(() => exitCode === null && child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(t);
      }
      return exitCode;
    },
  };
  running.add(self);
  if (o.ready) {
    try {
      await self.waitFor(o.ready);
    } catch (err) {
      await self.kill("SIGKILL");
      throw err;
    }
  }
  return self;
}

const tail = (s: string) => s.split("\n").slice(-20).join("\n");

/** Runs a node script to completion and returns the last JSON line it printed. */
export async function runJsonChild<T>(o: {
  name: string;
  script: string;
  args?: string[];
  nodeArgs?: string[];
  env?: Record<string, string | undefined>;
  logDir: string;
  timeoutMs?: number;
}): Promise<{ result: T; pid: number }> {
  const c = await startChild({ name: o.name, args: [...(o.nodeArgs ?? []), o.script, ...(o.args ?? [])], env: o.env, logDir: o.logDir });
  const timer = setTimeout(() => void c.kill("SIGKILL"), o.timeoutMs ?? 600_000);
  const code = await c.exited;
  clearTimeout(timer);
  const lines = c.log().trim().split("\n");
  const last = [...lines].reverse().find((l) => l.startsWith("{\"result\""));
  if (code !== 0 || !last) throw new Error(`${o.name} failed (exit ${code}); log ${c.logFile}:\n${tail(c.log())}`);
  return { result: (JSON.parse(last) as { result: T }).result, pid: c.pid };
}

/** For child scripts: print the result where runJsonChild finds it. */
export const emitResult = (result: unknown): void => {
  process.stdout.write(`${JSON.stringify({ result }, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}\n`);
};

/**
 * BENCH_CPU_PROF=<dir>: the Ponte processes (coordinator, gateway, agent) write V8 CPU profiles
 * there when they exit (open them in Chrome DevTools or speedscope).
 */
export const profileArgs = (): string[] => (process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []);
