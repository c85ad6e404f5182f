import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "./eventually.js";
import { canConnect, freePort } from "./ports.js";

/**
 * Where the tests find NATS with JetStream: NATS_URL, else 127.0.0.1:4222, else a nats-server
 * from the PATH on a free port; otherwise it stops at once saying how to install one.
 * Sets PONTE_TEST_NATS_URL for the workers.
 */
export async function provisionNats(): Promise<{ url: string; stop: () => Promise<void> }> {
  const noop = async () => {};
  if (process.env.PONTE_TEST_NATS_URL) return { url: process.env.PONTE_TEST_NATS_URL, stop: noop };
  const publish = (url: string, stop: () => Promise<void>) => {
    process.env.PONTE_TEST_NATS_URL = url;
    return { url, stop };
  };
  if (process.env.NATS_URL) return publish(process.env.NATS_URL, noop);
  if (await canConnect("127.0.0.1", 4222)) return publish("nats://127.0.0.1:4222", noop);
  const server = await startNatsServer();
  return publish(server.url, server.stop);
}

export const testNatsUrl = (): string => {
  const url = process.env.PONTE_TEST_NATS_URL ?? process.env.NATS_URL;
  if (!url) throw new Error("No test NATS: run the tests through vitest's globalSetup (provisionNats)");
  return url;
};

export function findNatsServer(): string | undefined {
  for (const candidate of ["nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server"]) {
    const r = spawnSync(candidate, ["--version"], { stdio: "ignore" });
    if (r.status === 0) return candidate;
  }
  return undefined;
}

/** A private nats-server with JetStream on a free port (tests that stop and restart NATS). */
export async function startNatsServer(opts: { port?: number; storeDir?: string } = {}): Promise<{
  url: string;
  port: number;
  storeDir: string;
  process: ChildProcess;
  stop: () => Promise<void>;
}> {
  const bin = findNatsServer();
  if (!bin) {
    throw new Error(
      "NATS with JetStream is needed for the tests and none was found: set NATS_URL, run one on 127.0.0.1:4222, " +
        "or install nats-server (Debian: apt-get install -y nats-server).",
    );
  }
  const port = opts.port ?? (await freePort());
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), "ponte-nats-"));
  const child = spawn(bin, ["-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  await eventually(() => canConnect("127.0.0.1", port), { timeout: 10_000, message: "nats-server did not start" });
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    process: child,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      if (!opts.storeDir) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
