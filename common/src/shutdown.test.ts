import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { createShutdown, SHUTDOWN_MAX_LISTENERS } from "./shutdown.js";

describe("createShutdown", () => {
  const logger = createLogger({ name: "shutdown-test", level: "silent" });

  it("holds a listener per open stream without a leak warning, and warns past its bound", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const { signal } = createShutdown(logger);
      const add = (n: number) => {
        for (let i = 0; i < n; i++) signal.addEventListener("abort", () => undefined);
      };
      add(50); // e.g. 25 agents' watch and transfer streams
      await new Promise((r) => setImmediate(r));
      expect(warnings).not.toContain("MaxListenersExceededWarning");
      add(SHUTDOWN_MAX_LISTENERS);
      await new Promise((r) => setImmediate(r));
      expect(warnings).toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("aborts its signal and runs the cleanups last-registered first", async () => {
    const s = createShutdown(logger, { timeoutMs: 5_000 });
    const order: string[] = [];
    s.onShutdown("first", () => void order.push("first"));
    s.onShutdown("second", async () => void order.push("second"));
    await s.shutdown("test");
    expect(s.signal.aborted).toBe(true);
    expect(s.isShuttingDown).toBe(true);
    expect(order).toEqual(["second", "first"]);
  });
});
