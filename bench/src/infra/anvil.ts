import { canConnect, freePort } from "@ponte/common/testing";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startChild, type Child } from "../core/proc.js";

const require = createRequire(import.meta.url);

/** The platform binary itself (a kill must reach anvil, not an npm wrapper). */
export function anvilBinary(): string {
  const pkg = require.resolve(`@foundry-rs/anvil-${process.platform}-${process.arch === "x64" ? "amd64" : process.arch}/package.json`);
  const bin = join(dirname(pkg), "bin", "anvil");
  if (!existsSync(bin)) throw new Error(`no anvil binary at ${bin}`);
  return bin;
}

export interface AnvilNode {
  proc: Child;
  http: string;
  ws: string;
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  /** Several calls in one JSON-RPC batch; throws on the first error. */
  batch<T = unknown>(calls: [string, unknown[]][]): Promise<T[]>;
  stop(): Promise<void>;
}

let nextId = 1;

export async function startAnvilNode(o: { args?: string[]; logDir: string; startTimeoutMs?: number }): Promise<AnvilNode> {
  const port = await freePort();
  const proc = await startChild({ name: "anvil", cmd: anvilBinary(), args: ["--host", "127.0.0.1", "--port", String(port), "--silent", ...(o.args ?? [])], logDir: o.logDir });
  const deadline = Date.now() + (o.startTimeoutMs ?? 30_000);
  while (!(await canConnect("127.0.0.1", port))) {
    if (proc.exitCode !== null) throw new Error(`anvil exited (${proc.exitCode}): ${proc.log().slice(-2000)}`);
    if (Date.now() > deadline) {
      await proc.kill("SIGKILL");
      throw new Error("anvil did not start in time");
    }
    await sleep(100);
  }
  const http = `http://127.0.0.1:${port}`;
  const post = async (body: unknown) => {
    const res = await fetch(http, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return res.json() as Promise<unknown>;
  };
  return {
    proc,
    http,
    ws: `ws://127.0.0.1:${port}`,
    async rpc<T>(method: string, params: unknown[] = []) {
      const r = (await post({ jsonrpc: "2.0", id: nextId++, method, params })) as { result?: T; error?: { message: string } };
      if (r.error) throw new Error(`${method}: ${r.error.message}`);
      return r.result as T;
    },
    async batch<T>(calls: [string, unknown[]][]) {
      if (calls.length === 0) return [];
      const ids = calls.map(() => nextId++);
      const r = (await post(calls.map(([method, params], i) => ({ jsonrpc: "2.0", id: ids[i], method, params })))) as {
        id: number;
        result?: T;
        error?: { message: string };
      }[];
      const byId = new Map(r.map((x) => [x.id, x]));
      return ids.map((id, i) => {
        const x = byId.get(id);
        if (!x || x.error) throw new Error(`${calls[i]![0]}: ${x?.error?.message ?? "no answer"}`);
        return x.result as T;
      });
    },
    async stop() {
      await proc.kill("SIGKILL");
    },
  };
}
