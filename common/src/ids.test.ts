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
  it("carry the creation time in their first 10 characters and never repeat, across the random pool's refills", () => {
    vi.useFakeTimers();
    vi.setSystemTime(1_764_000_000_000);
    // 48-bit milliseconds, big-endian, in Crockford base32: the first 10 characters (50 bits, the
    // last 2 random).
    const time = (id: string) => Math.floor([...id.slice(4, 14)].reduce((v, c) => v * 32 + "0123456789abcdefghjkmnpqrstvwxyz".indexOf(c), 0) / 4);
    // 2,000 ids in one millisecond draw 20,000 random bytes: the 4 KiB pool is refilled four times.
    const ids = Array.from({ length: 2_000 }, () => newId("event"));
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids.map(time))).toEqual(new Set([1_764_000_000_000]));
    // Random parts differ in every position, not only in a counter's last bytes.
    const tails = ids.map((id) => id.slice(14));
    expect(new Set(tails.map((t) => t[0])).size).toBeGreaterThan(16);
  });
});
