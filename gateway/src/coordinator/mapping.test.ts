import { tradev1 } from "@ponte/proto";
import { describe, expect, it } from "vitest";
import { tradeToJson } from "./mapping.js";

// The pure proto → JSON function on values the local stack rarely reaches (a payout's fields).
// How the real coordinator's answers come out is checked end to end in test/src/e2e/gateway-*.

const trade = (over: Partial<tradev1.Trade>) =>
  tradeToJson(tradev1.Trade.fromPartial({ decimals: 6, cryptoAmount: "1", fiatAmountCentavos: "1", version: 1n, ...over }));

describe("tradeToJson", () => {
  it("renders no payout as three nulls", () => {
    expect(trade({})).toMatchObject({ payout_amount: null, payout_status: null, payout_end_to_end_id: null });
  });

  it("renders the payout's amount in BRL, its status and end-to-end id as given", () => {
    expect(trade({ payoutAmountCentavos: "52506", payoutStatus: "SETTLED", payoutEndToEndId: "E0000000020260101000000000000001" })).toMatchObject({
      payout_amount: "525.06",
      payout_status: "SETTLED",
      payout_end_to_end_id: "E0000000020260101000000000000001",
    });
    expect(trade({ payoutAmountCentavos: "100", payoutStatus: "PROCESSING" })).toMatchObject({
      payout_amount: "1.00",
      payout_status: "PROCESSING",
      payout_end_to_end_id: null,
    });
  });
});
