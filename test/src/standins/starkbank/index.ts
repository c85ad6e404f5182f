// A faithful stand-in for Stark Bank's PIX transfer API, for tests. Run it in-process
// (startStarkbankStandin) or as its own process (main.ts / spawnStarkbankStandin). Production code
// never imports this folder.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { createLogger, type Logger } from "@ponte/common";
import { StarkbankStandinAdmin } from "./admin.js";
import { StarkbankStandinServer, type StarkbankStandinOptions } from "./server.js";

export { StarkbankStandinAdmin, type TransferSummary } from "./admin.js";
export { generateKeyPair, signedHeaders, type KeyPair } from "./crypto.js";
export { FAULT_KINDS, type EventRecord, type Fault, type FaultKind, type FaultSpec, type KeyHolder, type TransferJson } from "./model.js";
export type { StandinConfig, StarkbankStandinOptions } from "./server.js";

export interface StarkbankStandin {
  /** Base URL to give the adapter (it appends /v2). */
  url: string;
  port: number;
  admin: StarkbankStandinAdmin;
  /** The key webhooks are signed with now (changes on rotateKey). */
  publicKeyPem(): string;
  close(): Promise<void>;
}

export async function startStarkbankStandin(
  opts: Omit<StarkbankStandinOptions, "logger"> & { port?: number; host?: string; logger?: Logger } = {},
): Promise<StarkbankStandin> {
  const logger = opts.logger ?? createLogger({ name: "starkbank-standin", level: "silent" });
  const s = new StarkbankStandinServer({ ...opts, logger });
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    s.server.once("error", reject);
    s.server.listen(opts.port ?? 0, host, () => {
      s.server.off("error", reject);
      resolve();
    });
  });
  const addr = s.server.address();
  if (!addr || typeof addr !== "object") throw new Error("stand-in has no address");
  const url = `http://${host}:${addr.port}`;
  return {
    url,
    port: addr.port,
    admin: new StarkbankStandinAdmin(url),
    publicKeyPem: () => s.publicKeyPem,
    close: () => s.close(),
  };
}

/**
 * Runs main.js in a child process (so a test can kill it like any other service). Needs the
 * compiled stand-in: `npm run build -w @ponte/test`. env carries the STANDIN_* settings of main.ts.
 */
export async function spawnStarkbankStandin(env: Record<string, string> = {}): Promise<{
  url: string;
  port: number;
  admin: StarkbankStandinAdmin;
  process: ChildProcess;
  stop: () => Promise<void>;
}> {
  const main = builtMainPath();
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, PORT: "0", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    // A slow start must not leave the child behind.
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("stand-in did not start within 30 s"));
    }, 30_000);
    child.once("exit", (code) => reject(new Error(`stand-in exited with ${code}`)));
    lines.on("line", (line) => {
      try {
        const j = JSON.parse(line) as { port?: number; msg?: string };
        if (j.msg === "Stark Bank stand-in listening" && typeof j.port === "number") {
          clearTimeout(timer);
          resolve(j.port);
        }
      } catch {
        // Not a log line of ours (the child's stdout is otherwise ignored).
      }
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    admin: new StarkbankStandinAdmin(url),
    process: child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** dist/standins/starkbank/main.js, also when this module is loaded from src/ by vitest. */
function builtMainPath(): string {
  const here = fileURLToPath(import.meta.url);
  const candidate = here.endsWith(".ts")
    ? here.replace(/[\\/]src[\\/](standins[\\/]starkbank[\\/])index\.ts$/, "/dist/$1main.js")
    : here.replace(/index\.js$/, "main.js");
  if (!existsSync(candidate)) throw new Error(`${candidate} is missing: build the test package first (npm run build -w @ponte/test)`);
  return candidate;
}
