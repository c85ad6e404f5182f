import { fileURLToPath } from "node:url";

// Where the compiled pieces are: the bench runs the same dist/ files production runs.
const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

export const BENCH_DIST = here("../");
export const COORDINATOR_MAIN = fileURLToPath(import.meta.resolve("@ponte/coordinator")).replace(/index\.js$/, "main.js");
export const GATEWAY_MAIN = fileURLToPath(import.meta.resolve("@ponte/gateway")).replace(/index\.js$/, "main.js");
export const EVM_AGENT_MAIN = fileURLToPath(import.meta.resolve("@ponte/agent-evm")).replace(/index\.js$/, "main.js");
export const LOCAL_ASSETS = fileURLToPath(new URL("../assets/local.json", import.meta.resolve("@ponte/coordinator")));
export const ANVIL_CONFIG = fileURLToPath(new URL("../config/anvil.json", import.meta.resolve("@ponte/agent-evm")));
export const TEST_TOKEN = fileURLToPath(new URL("../test-contracts/TestToken.json", import.meta.resolve("@ponte/agent-evm")));
/** A compiled script of this package (for child processes), e.g. script("b1/hello.js"). */
export const script = (rel: string) => here(`../${rel}`);
