// Generated contracts, re-exported by namespace. Convert to domain types at the edges.
export * as agentv1 from "./gen/ponte/agent/v1/agent.js";
export * as tradev1 from "./gen/ponte/coordinator/v1/trade.js";
export * as eventsv1 from "./gen/ponte/events/v1/trade_event.js";
