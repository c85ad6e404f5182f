// B2's baseline: a raw ethers loop doing only eth_getBlockByNumber(n, true) for each block and
// one range eth_getLogs of the token contracts per step, with the agent's step (batch_size 100),
// JSON-RPC batch size (50) and no more in flight than the agent allows (8). ethers' batching is
// set to flush at once (batchStallTime 0) and its cache is off, as the agent has neither.
import { JsonRpcProvider, Network } from "ethers";
import { emitResult } from "../core/proc.js";

const [url, fromS, toS, stepS, rpcBatchS, contractsS] = process.argv.slice(2) as [string, string, string, string, string, string];
const from = Number(fromS);
const to = Number(toS);
const step = Number(stepS);
const contracts = contractsS.split(",");
const TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
const provider = new JsonRpcProvider(url, Network.from(31337), {
  staticNetwork: true,
  batchMaxCount: Number(rpcBatchS),
  batchStallTime: 0,
  cacheTimeout: -1,
});
const hex = (n: number) => `0x${n.toString(16)}`;

const cpu0 = process.cpuUsage();
const t0 = performance.now();
let txs = 0;
let logs = 0;
for (let start = from; start <= to; start += step) {
  const end = Math.min(to, start + step - 1);
  const calls: Promise<unknown>[] = [];
  for (let n = start; n <= end; n++) calls.push(provider.send("eth_getBlockByNumber", [hex(n), true]));
  calls.push(provider.send("eth_getLogs", [{ address: contracts, topics: [TRANSFER], fromBlock: hex(start), toBlock: hex(end) }]));
  const out = await Promise.all(calls);
  for (let i = 0; i < out.length - 1; i++) txs += (out[i] as { transactions: unknown[] }).transactions.length;
  logs += (out[out.length - 1] as unknown[]).length;
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
provider.destroy();
emitResult({ ms, blocks: to - from + 1, txs, logs, cpu_us: cpu.user + cpu.system });
