import { createLogger } from "@ponte/common";
import { describe, expect, it } from "vitest";
import { createNextHeight } from "./start.js";

const logger = createLogger({ name: "start-test", level: "silent" });

describe("a follower's next height", () => {
  it("is one past the cursor once there is one", () => {
    expect(createNextHeight(5n, logger)({ height: 41n, hash: "0xa" }, 100n)).toBe(42n);
  });

  it("without a cursor: the configured height, or the first head seen for latest, kept while the head moves", () => {
    const fixed = createNextHeight(5n, logger);
    expect([fixed(null, 100n), fixed(null, 120n)]).toEqual([5n, 5n]);
    const latest = createNextHeight("latest", logger);
    expect([latest(null, 100n), latest(null, 120n), latest({ height: 100n, hash: "0xb" }, 120n)]).toEqual([100n, 100n, 101n]);
  });
});
