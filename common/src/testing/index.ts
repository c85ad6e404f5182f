// Test helpers. Production code never imports this subpath.
export * from "./eventually.js";
export * from "./ports.js";
export * from "./postgres.js";
export * from "./nats.js";
export * from "./process.js";
export * from "./rpc-proxy.js";
