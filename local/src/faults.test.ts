// What npm start and npm run demo say and do when things are not as they should be.
import { freePort } from "@ponte/common/testing";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { StackInfo } from "./state/index.js";
import { killStack, run, runToEnd, stackOf, survivors, tempStateDir, userEnv, type Running } from "./_test/run.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function stateDir(): string {
  const s = tempStateDir();
  cleanups.push(s.cleanup);
  return s.dir;
}

async function occupy(): Promise<number> {
  const port = await freePort();
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return port;
}

describe("npm run demo without a stack", () => {
  it("says no stack is running and exits non-zero when there is no stack.json", async () => {
    const r = await runToEnd("demo", ["--state-dir", stateDir()], userEnv());
    expect(r.code).toBe(1);
    expect(r.output).toContain("No local Ponte is running");
    expect(r.output).toContain("npm start");
  });

  it("says the stack is not up when its gateway does not answer", async () => {
    const dir = stateDir();
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    // As a stack that died without cleaning up would leave it (with a live pid: ours).
    const info = { version: 1, pid: process.pid, gatewayUrl: `http://127.0.0.1:${port}`, tokens: { user: "x", admin: "x" } };
    writeFileSync(join(dir, "stack.json"), JSON.stringify(info));
    const r = await runToEnd("demo", ["--state-dir", dir], userEnv());
    expect(r.code).toBe(1);
    expect(r.output).toContain(`The local Ponte is not up: the gateway at http://127.0.0.1:${port} does not answer (ECONNREFUSED)`);
  });
});

describe("npm start with a port taken", () => {
  it("names the gateway's port and the variable that moves it, and starts nothing", async () => {
    const port = await occupy();
    const dir = stateDir();
    const r = await runToEnd("start", ["--state-dir", dir, "--free-ports"], userEnv({ PORT: String(port) }));
    expect(r.code).toBe(1);
    expect(r.output).toContain(`Port ${port} (the gateway, on 127.0.0.1) is already in use`);
    expect(r.output).toContain("PORT=<port> npm start");
    expect(r.output).not.toContain("Starting a local Ponte");
    expect(existsSync(dir)).toBe(false);
  });

  it("names an internal service's port the same way", async () => {
    const port = await occupy();
    const r = await runToEnd("start", ["--state-dir", stateDir(), "--free-ports"], userEnv({ PORT: String(await freePort()), PONTE_GRPC_PORT: String(port) }));
    expect(r.code).toBe(1);
    expect(r.output).toContain(`Port ${port} (the coordinator's gRPC, on 127.0.0.1) is already in use`);
    expect(r.output).toContain("PONTE_GRPC_PORT=<port>");
  });
});

describe("npm start with a piece missing or dying", () => {
  let start: Running | undefined;
  let children: StackInfo["children"] = [];
  // Runs before the file's afterAll, which removes the state folders.
  afterAll(() => killStack(start, children));

  it("runs without NATS and LTC when nats-server and litecoind are missing, and stops everything when a child dies", async () => {
    const dir = stateDir();
    const env = userEnv({ PORT: String(await freePort()), PONTE_NATS_SERVER: "/nonexistent/nats-server", PONTE_LITECOIND: "/nonexistent/litecoind" });
    start = run("start", ["--state-dir", dir, "--free-ports"], env);
    await start.waitForOutput("Ponte is running", 120_000);
    expect(start.output()).toContain("running without NATS; trade events wait in the outbox");
    expect(start.output()).toContain("LTC is off: PONTE_LITECOIND (/nonexistent/litecoind) does not exist (Debian: apt-get install -y litecoind)");
    expect(start.output()).toContain("Agents        anvil on; litecoin-regtest off (PONTE_LITECOIND (/nonexistent/litecoind) does not exist)");
    const info = stackOf(dir);
    children = info.children;
    expect(children.map((c) => c.name)).not.toContain("nats");
    expect(children.map((c) => c.name)).not.toContain("litecoind");
    expect(children.map((c) => c.name)).not.toContain("agent-bitcoin-litecoin-regtest");
    expect(info.litecoin).toBeNull();

    // Selling LTC on that stack: a clear message and a non-zero exit, before anything is created.
    const ltc = await runToEnd("demo", ["--state-dir", dir, "--asset", "LTC"], env);
    expect(ltc.code).toBe(1);
    expect(ltc.output).toContain("LTC is off in this local Ponte (PONTE_LITECOIND (/nonexistent/litecoind) does not exist)");
    expect(ltc.output).not.toContain("Trade trd_");

    const victim = children.find((c) => c.name === "starkbank-standin")!;
    process.kill(victim.pid, "SIGKILL");
    expect(await start.exited).toBe(1);
    expect(start.output()).toContain("starkbank-standin exited unexpectedly (signal SIGKILL)");
    expect(survivors(children)).toEqual([]);
  });
});
