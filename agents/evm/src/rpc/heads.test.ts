import { createAgentMetrics } from "@ponte/agent-runtime";
import { createRegistry } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { setTimeout as sleep } from "node:timers/promises";
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

/** "woken" when `wait` ends first, "slept" when 5 s pass (far below the 10 min it was given). */
const race = (wait: Promise<void>) => Promise.race([wait.then(() => "woken" as const), sleep(5_000).then(() => "slept" as const)]);

describe("head watcher", () => {
  it("a head that arrived while the caller was reading the chain ends next() at once", async () => {
    const seen = heads.seq;
    // The caller reads the chain here; meanwhile a block is mined and announced.
    await anvil.mine();
    await eventually(() => heads.seq > seen);
    expect(await race(heads.next(600_000, ac.signal, seen))).toBe("woken");
    // Without `seen`, the head already delivered does not count: it waits for the next one.
    const waiting = heads.next(600_000, ac.signal);
    await anvil.mine();
    expect(await race(waiting)).toBe("woken");
  });

  it("with no head since `seen`, next() ends at the next head", async () => {
    const seen = heads.seq;
    const waiting = heads.next(600_000, ac.signal, seen);
    await anvil.mine();
    expect(await race(waiting)).toBe("woken");
    expect(heads.seq).toBeGreaterThan(seen);
  });
});
