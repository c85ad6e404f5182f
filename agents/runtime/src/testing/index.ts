// Test helpers. Production code never imports this subpath.
export * from "./fake-coordinator.js";
