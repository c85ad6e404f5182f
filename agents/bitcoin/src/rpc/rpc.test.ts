import { createLogger } from "@ponte/common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeLitecoind, cookieFile, startLitecoind, type Litecoind } from "../_test/litecoind.js";
import { createUtxoRpc, RpcError, RpcUnavailableError } from "./index.js";

let node: Litecoind;
beforeAll(async () => {
  node = await startLitecoind({ cookie: true });
}, 60_000);
afterAll(async () => closeLitecoind(node));

describe("node RPC client", () => {
  it("authenticates with the cookie file and reads the new one after the node restarted", async () => {
    const rpc = createUtxoRpc({ url: node.url, auth: { kind: "cookie", file: cookieFile(node) }, timeoutMs: 5_000, maxInFlight: 2, batchSize: 5, logger: createLogger({ name: "rpc-test", level: "silent" }) });
    const before = await rpc.call<number>("getblockcount");
    expect(before).toBe(101);
    await node.restart();
    await node.mine(1);
    expect(await rpc.call<number>("getblockcount")).toBe(102);
    // A JSON-RPC refusal is an RpcError with the node's code; the node down is retryable.
    await expect(rpc.call("getblockhash", [10_000])).rejects.toMatchObject({ code: -8 });
    await expect(rpc.call("getblockhash", [10_000])).rejects.toBeInstanceOf(RpcError);
    await node.stop();
    const err = await rpc.call("getblockcount").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcUnavailableError);
    expect((err as RpcUnavailableError).retryable).toBe(true);
    await node.restart();
  }, 60_000);
});
