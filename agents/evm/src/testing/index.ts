// Test helpers for other packages' end-to-end tests (anvil, the test token). Never imported by
// production code.
export * from "../_test/anvil.js";
