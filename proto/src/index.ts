// Generated contracts, re-exported by namespace. Convert to domain types at the edges.
import { BinaryWriter } from "@bufbuild/protobuf/wire";

export * as agentv1 from "./gen/ponte/agent/v1/agent.js";
export * as tradev1 from "./gen/ponte/coordinator/v1/trade.js";
export * as eventsv1 from "./gen/ponte/events/v1/trade_event.js";

/**
 * A message's `encode` bound to one reused writer, which keeps its grown buffer between
 * messages (a fresh writer starts empty and regrows for each). Encoding is synchronous, so two
 * calls never share the writer at once; each result is its own copy.
 */
export function reusingEncoder<T>(encode: (message: T, writer: BinaryWriter) => BinaryWriter): (message: T) => Uint8Array {
  const writer = new BinaryWriter();
  return (message) => {
    try {
      return encode(message, writer).finish();
    } catch (err) {
      writer.finish(); // a message that failed half-way must not prefix the next one
      throw err;
    }
  };
}
