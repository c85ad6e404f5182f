import { createLogger } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { describe, expect, it } from "vitest";
import { createCoordinatorMetrics } from "./metrics.js";
import { workerLoop } from "./worker-loop.js";

const runs = async (metrics: ReturnType<typeof createCoordinatorMetrics>, result: string) =>
  (await metrics.workerRuns.get()).values.find((v) => v.labels.worker === "test" && v.labels.result === result)?.value ?? 0;

describe("workerLoop", () => {
  it("runs again at once while a pass says more is waiting, counts failures and goes on, and stops", async () => {
    const metrics = createCoordinatorMetrics();
    const script: ("more" | "done" | "fail")[] = ["more", "more", "fail", "done", "done"];
    let passes = 0;
    const loop = workerLoop({
      worker: "test",
      // Long enough that a pass after a "done" or a failure would not come within the test.
      intervalMs: 60_000,
      metrics,
      logger: createLogger({ name: "test", level: "silent" }),
      failure: "pass failed",
      pass: async () => {
        const step = script[passes++];
        if (step === "fail") throw new Error("boom");
        return step === "more";
      },
    });
    expect(passes).toBe(0); // nothing runs before start
    loop.start();
    loop.start(); // a second start is a no-op
    // Two "more" answers run the next pass at once; the failure then waits for the interval.
    await eventually(async () => (await runs(metrics, "error")) === 1);
    expect(passes).toBe(3);
    expect(await runs(metrics, "ok")).toBe(2);
    const started = Date.now();
    await loop.stop();
    expect(Date.now() - started).toBeLessThan(1_000); // the interval's wait ends with the loop
    expect(passes).toBe(3);
  });
});
