import { describe, expect, it } from "vitest";
import { canonicalJson, requestHash } from "./idempotency.js";

describe("requestHash", () => {
  it("does not depend on key order", () => {
    expect(requestHash({ quote_id: "q", refund_address: "a" })).toBe(requestHash({ refund_address: "a", quote_id: "q" }));
  });

  it("changes with any value", () => {
    expect(requestHash({ quote_id: "q", refund_address: "a" })).not.toBe(requestHash({ quote_id: "q", refund_address: "b" }));
  });

  it("is sha256 hex of the sorted, compact JSON", () => {
    expect(canonicalJson({ b: [1, { d: null, c: "x" }], a: true })).toBe('{"a":true,"b":[1,{"c":"x","d":null}]}');
    // sha256('{"a":1}')
    expect(requestHash({ a: 1 })).toBe("015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862");
  });
});
