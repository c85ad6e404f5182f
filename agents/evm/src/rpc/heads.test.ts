import { createAgentMetrics } from "@ponte/agent-runtime";
import { createRegistry } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { setImmediate } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnvil, type Anvil } from "../_test/anvil.js";
import { silentLogger } from "../_test/rpc.js";
import { createHeadWatcher, type HeadWatcher } from "./heads.js";

let anvil: Anvil;
let heads: HeadWatcher;
const ac = new AbortController();

beforeAll(async () => {
  anvil = await startAnvil();
  heads = createHeadWatcher({ logger: silentLogger() }, { urls: [anvil.ws], metrics: createAgentMetrics(createRegistry("heads-test"), "anvil"), network: "anvil" });
  await eventually(() => heads.connected);
}, 30_000);
afterAll(async () => {
  ac.abort();
  await heads?.stop();
  await anvil?.stop();
});

/** Whether `wait` has ended: after the pending callbacks have run, without waiting for any timer. */
const ended = (wait: Promise<void>) => {
  let done = false;
  void wait.then(() => (done = true));
  return () => done;
};

describe("head watcher", () => {
  it("a head that arrived while the caller was reading the chain ends next() at once", async () => {
    const seen = heads.seq;
    // The caller reads the chain here; meanwhile a block is mined and announced.
    await anvil.mine();
    await eventually(() => heads.seq > seen);
    const woken = ended(heads.next(600_000, ac.signal, seen));
    await setImmediate();
    expect(woken()).toBe(true);
  });

  it("with no head since `seen`, next() ends at the next head", async () => {
    const seen = heads.seq;
    const waiting = ended(heads.next(600_000, ac.signal, seen));
    await setImmediate();
    expect(waiting()).toBe(false);
    await anvil.mine();
    await eventually(waiting);
    expect(heads.seq).toBeGreaterThan(seen);
  });
});
