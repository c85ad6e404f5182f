// Test helpers for other packages' end-to-end tests (a litecoind regtest node). Never imported
// by production code.
export * from "../_test/litecoind.js";

