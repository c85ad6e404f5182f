import { Server, ServerCredentials, type handleUnaryCall } from "@grpc/grpc-js";
import { PonteError, unary } from "@ponte/common";
import { tradev1 } from "@ponte/proto";

// A stand-in TradeService on a real gRPC socket: it checks the gateway's mapping both ways
// (requests as sent, replies and error trailers as received) without Postgres. The end-to-end
// tests against the real coordinator live in test/.

type Handler<H> = H extends handleUnaryCall<infer Req, infer Res> ? (req: Req) => Promise<Res> : never;
export type FakeImpl = { [K in keyof tradev1.TradeServiceServer]: Handler<tradev1.TradeServiceServer[K]> };
export type Method = keyof FakeImpl;

export interface FakeCoordinator {
  url: string;
  calls: { method: Method; request: unknown; requestId: unknown }[];
  close(): Promise<void>;
}

export const TRADE_ID = "trd_06h2d176hda7fc46fchwk6mza8";
export const QUOTE_ID = "qte_06h2d176hjnn0qayzpmjs9vyew";

export const sampleTrade = (over: Partial<tradev1.Trade> = {}): tradev1.Trade =>
  tradev1.Trade.fromPartial({
    id: TRADE_ID,
    userId: "user-1",
    status: "PENDING",
    symbol: "USDT",
    network: "polygon",
    decimals: 6,
    cryptoAmount: "100500000",
    fiatAmountCentavos: "54321",
    price: "5.6",
    depositAddress: "0x00000000000000000000000000000000000000d1",
    refundAddress: "0x00000000000000000000000000000000000000e1",
    expiresAt: "2026-01-01T00:15:00.000Z",
    monitoringUntil: "2026-01-02T00:00:00.000Z",
    createdAt: "2026-01-01T00:00:00.000Z",
    updatedAt: "2026-01-01T00:00:00.000Z",
    version: 1n,
    receivedAmount: "0",
    confirmedAmount: "0",
    payoutAmountCentavos: "",
    quoteId: QUOTE_ID,
    ...over,
  });

export const sampleQuote = (over: Partial<tradev1.Quote> = {}): tradev1.Quote =>
  tradev1.Quote.fromPartial({
    quoteId: QUOTE_ID,
    userId: "user-1",
    symbol: "USDT",
    network: "polygon",
    decimals: 6,
    cryptoAmount: "100500000",
    fiatAmountCentavos: "54321",
    price: "5.6",
    spreadBps: "300",
    networkFeeBps: "25",
    spreadCentavos: "1688",
    networkFeeCentavos: "140",
    expiresAt: "2026-01-01T00:01:00.000Z",
    createdAt: "2026-01-01T00:00:00.000Z",
    ...over,
  });

export const sampleAsset = (over: Partial<tradev1.Asset> = {}): tradev1.Asset =>
  tradev1.Asset.fromPartial({
    symbol: "USDT",
    network: "polygon",
    name: "Tether USD",
    decimals: 6,
    contract: "0xc2132D05D31c914a87C6611C10748AEb04B58e8F",
    minAmount: "10000000",
    maxAmount: "50000000000",
    confirmations: 128,
    enabled: true,
    spreadBps: "300",
    networkFeeBps: "25",
    price: "5.61",
    ...over,
  });

const notImplemented = (): Promise<never> => Promise.reject(new PonteError("INTERNAL", "not faked"));

export async function startFakeCoordinator(impl: Partial<FakeImpl> = {}): Promise<FakeCoordinator> {
  const calls: FakeCoordinator["calls"] = [];
  const server = new Server();
  const handlers = {} as Record<Method, ReturnType<typeof unary>>;
  for (const method of Object.keys(tradev1.TradeServiceService) as Method[]) {
    const fn = (impl[method] ?? notImplemented) as (req: unknown) => Promise<unknown>;
    handlers[method] = unary(async (req: unknown, md) => {
      calls.push({ method, request: req, requestId: md.get("x-request-id")[0] });
      return fn(req);
    });
  }
  server.addService(tradev1.TradeServiceService, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    url: `127.0.0.1:${port}`,
    calls,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
