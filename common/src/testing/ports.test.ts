import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "./ports.js";

describe("freePort", () => {
  // The kernel hands a released port out again often: 300 plain picks repeated one 2–10 times.
  it("never gives this process the same port twice, and each one can be bound", async () => {
    const ports: number[] = [];
    for (let i = 0; i < 300; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports.slice(-3)) {
      const s = createServer();
      await new Promise<void>((resolve, reject) => s.once("error", reject).listen(port, "127.0.0.1", resolve));
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });
});
