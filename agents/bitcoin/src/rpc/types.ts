// The node's answers as this agent reads them (amounts as exact decimal strings, see parseExact).

export interface RpcVout {
  value: string;
  n: number;
  scriptPubKey: { hex: string; type?: string };
}

export interface RpcVin {
  txid?: string;
  vout?: number;
  coinbase?: string;
  sequence: number;
}

export interface RpcTx {
  txid: string;
  vin: RpcVin[];
  vout: RpcVout[];
  /** getrawtransaction on a mined transaction (with -txindex, or found in the mempool otherwise). */
  blockhash?: string;
  confirmations?: number;
}

export interface RpcBlock {
  hash: string;
  height: number;
  previousblockhash?: string;
  time: number;
  tx: RpcTx[];
}

export interface RpcHeader {
  hash: string;
  height: number;
  previousblockhash?: string;
  time: number;
  /** -1 for a block that is no longer on the active chain. */
  confirmations: number;
}

export interface RpcTxOut {
  bestblock: string;
  confirmations: number;
  value: string;
  scriptPubKey: { hex: string };
  coinbase: boolean;
}
