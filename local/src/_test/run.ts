// Runs the built entries (local/dist/start.js, demo.js) as a user would, for the tests.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "@ponte/common/testing";
import { REPO_ROOT } from "../paths.js";
import { readStackInfo, type StackInfo } from "../state/index.js";
import { groupAlive } from "../supervisor/index.js";

const START = join(REPO_ROOT, "local/dist/start.js");
const DEMO = join(REPO_ROOT, "local/dist/demo.js");

/** The environment of a user who configured nothing: no DATABASE_URL or NATS_URL, no colours. */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", ...extra };
  for (const k of ["DATABASE_URL", "NATS_URL", "JWT_SECRET", "PORT", "HOST", "PONTE_STATE_DIR", "PONTE_TEST_PG_URL", "PONTE_TEST_NATS_URL"]) {
    if (!(k in extra)) delete env[k];
  }
  return env;
}

/** A state folder in a fresh temporary folder. Postgres runs as another user when we are root: it must reach it. */
export function tempStateDir(): { dir: string; cleanup: () => void } {
  const parent = mkdtempSync(join(tmpdir(), "ponte-local-"));
  chmodSync(parent, 0o755);
  return { dir: join(parent, "state"), cleanup: () => rmSync(parent, { recursive: true, force: true }) };
}

export interface Running {
  proc: ChildProcess;
  output(): string;
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

export function run(entry: "start" | "demo", args: string[], env: NodeJS.ProcessEnv): Running {
  const proc = spawn(process.execPath, [entry === "start" ? START : DEMO, ...args], { env, cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  proc.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  // "close" comes after the output is all read: a process that ended without the text has failed.
  let closed = false;
  proc.once("close", () => (closed = true));
  return {
    proc,
    output: () => out,
    exited,
    async waitForOutput(text, timeoutMs = 60_000) {
      await eventually(
        () => {
          if (out.includes(text) || closed) return true;
          throw new Error(`has not printed "${text}" yet:\n${out.slice(-3000)}`);
        },
        { timeout: timeoutMs, interval: 100 },
      );
      if (!out.includes(text)) throw new Error(`exited (${proc.exitCode}) before printing "${text}":\n${out}`);
    },
  };
}

export async function runToEnd(entry: "start" | "demo", args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const r = run(entry, args, env);
  const code = await r.exited;
  return { code, output: r.output() };
}

export const stackOf = (stateDir: string): StackInfo => {
  const info = readStackInfo(join(stateDir, "stack.json"));
  if (!info) throw new Error(`no stack.json in ${stateDir}`);
  return info;
};

/** Children (by process group) of a stack that are still there. */
export const survivors = (children: StackInfo["children"]): string[] =>
  children.filter((c) => groupAlive(c.pid)).map((c) => `${c.name} (${c.pid})`);

/**
 * Cleanup after a test, passed or failed: npm start is asked to stop (it stops its children, also
 * half-way through starting, before stack.json lists them); then whatever the stack recorded goes.
 */
export async function killStack(start: Running | undefined, children: StackInfo["children"]): Promise<void> {
  if (start && start.proc.exitCode === null) {
    start.proc.kill("SIGTERM");
    const stopped = await Promise.race([start.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000))]);
    if (!stopped) start.proc.kill("SIGKILL");
  }
  for (const c of children) {
    try {
      process.kill(-c.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}
