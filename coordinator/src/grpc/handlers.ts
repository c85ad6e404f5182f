import { PonteError, toGrpcError, type Logger } from "@ponte/common";
import type { ServiceError, handleServerStreamingCall, handleUnaryCall, ServerWritableStream, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { CoordinatorMetrics } from "../metrics.js";

/** Promise-returning unary handlers keyed like the generated *Server interface. */
export type Handlers<S> = {
  [K in keyof S as string extends K ? never : K]: S[K] extends handleUnaryCall<infer Req, infer Res>
    ? (req: Req) => Promise<Res>
    : S[K] extends handleServerStreamingCall<infer Req, infer Res>
      ? (call: ServerWritableStream<Req, Res>) => Promise<void>
      : never;
};

/**
 * Adapts promise handlers to grpc-js: errors become statuses with the Ponte code, unknown
 * errors are logged (they are bugs) and answered INTERNAL without details; every call is counted.
 */
export function adapt<S>(
  service: Record<string, { requestStream: boolean; responseStream: boolean }>,
  handlers: Handlers<S>,
  common: { logger: Logger; metrics: CoordinatorMetrics },
): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const [name, def] of Object.entries(service)) {
    const fn = (handlers as Record<string, unknown>)[name] as ((arg: unknown) => Promise<unknown>) | undefined;
    if (!fn) continue;
    const fail = (err: unknown) => {
      const code = err instanceof PonteError ? err.code : "INTERNAL";
      if (!(err instanceof PonteError) || code === "INTERNAL") common.logger.error({ err, method: name }, "gRPC handler failed");
      common.metrics.grpcRequests.inc({ method: name, code });
      return toGrpcError(err);
    };
    if (def.responseStream) {
      out[name] = (call: ServerWritableStream<unknown, unknown>) => {
        fn(call).then(
          () => call.end(),
          // grpc-js sends a stream's status from an 'error' event (destroy() would never send one).
          (err: unknown) => call.emit("error", fail(err)),
        );
      };
    } else {
      out[name] = (call: { request: unknown }, cb: (err: Partial<ServiceError> | null, res?: unknown) => void) => {
        const end = common.metrics.grpcLatency.startTimer({ method: name });
        fn(call.request).then(
          (res) => {
            end();
            common.metrics.grpcRequests.inc({ method: name, code: "OK" });
            cb(null, res);
          },
          (err: unknown) => {
            end();
            cb(fail(err));
          },
        );
      };
    }
  }
  return out;
}
