import { canConnect, freePort } from "@ponte/common/testing";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePorts } from "./ports.js";

describe("freePorts", () => {
  it("picks distinct free ports, never one the caller has taken, and leaves the taken ones free again", async () => {
    const taken = [await freePort(), await freePort()];
    for (let round = 0; round < 20; round++) {
      const picked = await freePorts(4, "127.0.0.1", taken);
      expect(new Set(picked).size).toBe(4);
      expect(picked.filter((p) => taken.includes(p))).toEqual([]);
    }
    // Held only while picking: the caller can bind its taken ports afterwards.
    for (const port of taken) {
      const s = createServer();
      await new Promise<void>((resolve, reject) => s.once("error", reject).listen(port, "127.0.0.1", resolve));
      expect(await canConnect("127.0.0.1", port)).toBe(true);
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });

  it("takes a taken port that something else already listens on in its stride", async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const picked = await freePorts(2, "127.0.0.1", [port]);
      expect(picked).toHaveLength(2);
      expect(picked).not.toContain(port);
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });
});
