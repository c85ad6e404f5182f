import { createAgentMetrics } from "@ponte/agent-runtime";
import { createLogger, createRegistry } from "@ponte/common";
import { createEvmRpc } from "../rpc/index.js";

export const silentLogger = () => createLogger({ name: "evm-test", level: process.env.PONTE_TEST_LOG ?? "silent" });

export function testRpc(url: string | string[], o: { maxBatchSize?: number; timeoutMs?: number } = {}) {
  const registry = createRegistry("evm-test");
  const metrics = createAgentMetrics(registry, "anvil");
  const ac = new AbortController();
  const rpc = createEvmRpc({ logger: silentLogger() }, {
    urls: Array.isArray(url) ? url : [url],
    timeoutMs: o.timeoutMs ?? 5_000,
    maxInFlight: 4,
    maxBatchSize: o.maxBatchSize ?? 20,
    metrics,
    signal: ac.signal,
    attempts: 3,
  });
  return { rpc, registry, metrics, abort: () => ac.abort() };
}
