import { describe, expect, it } from "vitest";
import { eventsv1, reusingEncoder } from "./index.js";

const event = (n: number): eventsv1.TradeEvent => ({
  ...eventsv1.TradeEvent.fromPartial({}),
  eventId: `evt_${n}`,
  tradeId: `trd_${"x".repeat(n * 7)}`,
  toStatus: "PAYMENT_CONFIRMED",
  version: BigInt(n),
  data: Object.fromEntries(Array.from({ length: n % 4 }, (_, i) => [`k${i}`, "v".repeat(n)])),
});

describe("reusingEncoder", () => {
  it("encodes each message exactly as a fresh writer does, whatever the sizes before it", () => {
    const encode = reusingEncoder(eventsv1.TradeEvent.encode);
    // Large, then small, then large again: a stale byte or a shared buffer would show.
    const sizes = [40, 1, 0, 90, 3, 200, 2];
    const out = sizes.map((n) => encode(event(n)));
    sizes.forEach((n, i) => {
      expect(Buffer.from(out[i]!)).toEqual(Buffer.from(eventsv1.TradeEvent.encode(event(n)).finish()));
      expect(eventsv1.TradeEvent.decode(out[i]!)).toEqual(event(n));
    });
  });

  it("a message that fails half-way leaves nothing behind for the next one", () => {
    const encode = reusingEncoder(eventsv1.TradeEvent.encode);
    // 2^64 does not fit the uint64 version: the writer throws after writing the earlier fields.
    expect(() => encode({ ...event(5), version: 2n ** 64n })).toThrow();
    expect(Buffer.from(encode(event(3)))).toEqual(Buffer.from(eventsv1.TradeEvent.encode(event(3)).finish()));
  });
});
