import { spawn, type ChildProcess } from "node:child_process";
import { eventually } from "./eventually.js";

export interface RunningProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every output line so far (pino JSON lines, parsed when they parse). */
  readonly lines: string[];
  readonly exitCode: number | null;
  waitForLog(match: string | RegExp, opts?: { timeout?: number }): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `node <entry>` with env, keeping its output for assertions and failure messages. */
export async function startProcess(opts: {
  name: string;
  entry: string;
  args?: string[];
  env: Record<string, string | undefined>;
  readyLog?: string | RegExp;
  timeout?: number;
  echo?: boolean;
}): Promise<RunningProcess> {
  const child = spawn(process.execPath, [opts.entry, ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let exitCode: number | null = null;
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) => {
      exitCode = code ?? (signal ? 128 : null);
      resolve(exitCode);
    }),
  );
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (opts.echo || process.env.PONTE_TEST_ECHO) process.stderr.write(`[${opts.name}] ${line}\n`);
      }
    });
  }
  const self: RunningProcess = {
    name: opts.name,
    child,
    lines,
    get exitCode() {
      return exitCode;
    },
    async waitForLog(match, o = {}) {
      return eventually(
        () => {
          const hit = lines.find((l) => (typeof match === "string" ? l.includes(match) : match.test(l)));
          if (hit) return hit;
          if (exitCode !== null) throw new Error(`${opts.name} exited (${exitCode}) before logging ${match}:\n${lines.slice(-30).join("\n")}`);
          throw new Error(`${opts.name} has not logged ${match} yet:\n${lines.slice(-15).join("\n")}`);
        },
        { timeout: o.timeout ?? opts.timeout ?? 20_000, interval: 25 },
      );
    },
    async kill(signal = "SIGTERM") {
      if (exitCode === null) child.kill(signal);
      return exited;
    },
  };
  if (opts.readyLog) {
    try {
      await self.waitForLog(opts.readyLog, { timeout: opts.timeout ?? 20_000 });
    } catch (err) {
      await self.kill("SIGKILL");
      throw err;
    }
  }
  return self;
}
