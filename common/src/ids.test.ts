import { afterEach, describe, expect, it, vi } from "vitest";
import { isQuoteId, isTradeId, newId } from "./ids.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("ids", () => {
  it("are prefixed, well-formed and sort by creation time", () => {
    vi.useFakeTimers();
    vi.setSystemTime(1_764_000_000_000);
    const a = newId("trade");
    vi.setSystemTime(1_764_000_000_001);
    const b = newId("trade");
    expect(isTradeId(a)).toBe(true);
    expect(isQuoteId(a)).toBe(false);
    expect(a < b).toBe(true);
    expect(isTradeId("trd_not-valid")).toBe(false);
  });
});
