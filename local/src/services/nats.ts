import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import type { Supervisor } from "../supervisor/index.js";

/**
 * PONTE_NATS_SERVER when set (a path; one that does not exist turns NATS off), else nats-server
 * from the PATH or Debian's /usr/sbin, which is not on every user's PATH.
 */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = env.PONTE_NATS_SERVER ? [env.PONTE_NATS_SERVER] : ["nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server"];
  for (const candidate of candidates) {
    const r = spawnSync(candidate, ["--version"], { stdio: "ignore" });
    if (r.status === 0) return candidate;
  }
  return undefined;
}

/** A JetStream nats-server on 127.0.0.1:port keeping its streams in storeDir. */
export async function startNats(sup: Supervisor, o: { bin: string; port: number; storeDir: string }): Promise<{ url: string }> {
  mkdirSync(o.storeDir, { recursive: true });
  const child = sup.start({
    name: "nats",
    cmd: o.bin,
    args: ["-js", "-sd", o.storeDir, "-a", "127.0.0.1", "-p", String(o.port)],
    env: process.env,
  });
  await child.waitFor((l) => l.includes("Server is ready"), "that it is ready", 20_000);
  return { url: `nats://127.0.0.1:${o.port}` };
}
