// Shapes of the JSON-RPC answers we read, and their conversion (hex quantities → bigint).

export interface RpcTx {
  hash: string;
  from: string;
  to: string | null;
  value: string;
  transactionIndex: string;
}

export interface RpcBlock<T = RpcTx> {
  number: string;
  hash: string;
  parentHash: string;
  timestamp: string;
  transactions: T[];
}

export interface RpcLog {
  address: string;
  topics: string[];
  data: string;
  blockNumber: string;
  blockHash: string;
  transactionHash: string;
  transactionIndex: string;
  logIndex: string;
  removed?: boolean;
}

export interface RpcReceipt {
  transactionHash: string;
  blockHash: string;
  status?: string;
}

export interface Header {
  height: bigint;
  hash: string;
  parentHash: string;
  time: bigint;
}

export const toHeader = (b: Pick<RpcBlock, "number" | "hash" | "parentHash" | "timestamp">): Header => ({
  height: BigInt(b.number),
  hash: b.hash.toLowerCase(),
  parentHash: b.parentHash.toLowerCase(),
  time: BigInt(b.timestamp),
});

/** keccak256("Transfer(address,address,uint256)") */
export const TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
