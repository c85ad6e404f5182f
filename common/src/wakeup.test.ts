import { setImmediate } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createWakeup } from "./wakeup.js";

/** Whether `p` has settled once the callbacks already queued have run (no timer waited for). */
async function settled(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await setImmediate();
  return done;
}

describe("createWakeup", () => {
  it("news during a wait ends it", async () => {
    const w = createWakeup();
    const waiting = w.wait(600_000);
    expect(await settled(waiting)).toBe(false);
    w.notify();
    expect(await settled(waiting)).toBe(true);
  });

  it("news while the loop works (no one waiting) ends the next wait at once, and only that one", async () => {
    const w = createWakeup();
    w.notify();
    expect(await settled(w.wait(600_000))).toBe(true);
    const ac = new AbortController();
    const next = w.wait(600_000, ac.signal);
    expect(await settled(next)).toBe(false);
    ac.abort();
    expect(await settled(next)).toBe(true);
  });

  it("news that ended a wait is not news for the wait after it", async () => {
    const w = createWakeup();
    const first = w.wait(600_000);
    w.notify();
    await first;
    const ac = new AbortController();
    expect(await settled(w.wait(600_000, ac.signal))).toBe(false);
    ac.abort();
  });

  it("an aborted signal ends the wait at once", async () => {
    const ac = new AbortController();
    ac.abort();
    expect(await settled(createWakeup().wait(600_000, ac.signal))).toBe(true);
  });
});
