import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { ErrorCodes, isErrorCode, PonteError, RetryableError, type ErrorCode } from "./errors.js";

// Ponte errors cross gRPC as a status code plus two trailers: the stable error code and its
// JSON details. Both sides use these two functions and nothing else.
const CODE_KEY = "ponte-error-code";
const DETAILS_KEY = "ponte-error-details";

const grpcStatusFor = (code: ErrorCode): status => {
  const http = ErrorCodes[code];
  if (code === "LEASE_LOST" || code === "INVALID_STATE" || code === "STALE_STATE") return status.FAILED_PRECONDITION;
  if (http === 400 || http === 413 || http === 422) return status.INVALID_ARGUMENT;
  if (http === 401) return status.UNAUTHENTICATED;
  if (http === 403) return status.PERMISSION_DENIED;
  if (http === 404) return status.NOT_FOUND;
  if (http === 409) return status.ABORTED;
  if (http === 503) return status.UNAVAILABLE;
  return status.INTERNAL;
};

/** For server handlers: any thrown error → a gRPC ServiceError (unknown errors → INTERNAL, no details). */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  const md = new Metadata();
  if (err instanceof PonteError) {
    md.set(CODE_KEY, err.code);
    md.set(DETAILS_KEY, JSON.stringify(err.details));
    return { code: grpcStatusFor(err.code), details: err.message, metadata: md };
  }
  md.set(CODE_KEY, "INTERNAL");
  return { code: status.INTERNAL, details: "internal error", metadata: md };
}

/** For clients: a gRPC error → the PonteError it carried; transport failures → COORDINATOR_UNAVAILABLE. */
export function fromGrpcError(err: unknown): PonteError {
  const e = err as Partial<ServiceError>;
  const code = e.metadata?.get(CODE_KEY)[0];
  if (typeof code === "string" && isErrorCode(code)) {
    let details: Record<string, unknown> = {};
    const raw = e.metadata?.get(DETAILS_KEY)[0];
    if (typeof raw === "string") {
      try {
        details = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        details = {};
      }
    }
    return new PonteError(code, e.details ?? code, details, { cause: err });
  }
  if (e.code === status.UNAVAILABLE || e.code === status.DEADLINE_EXCEEDED || e.code === status.CANCELLED) {
    return new RetryableError("COORDINATOR_UNAVAILABLE", "the coordinator is unreachable", {}, { cause: err });
  }
  return new PonteError("INTERNAL", "unexpected error from the coordinator", {}, { cause: err });
}

/** Wraps a promise-returning implementation as a grpc-js unary handler. */
export function unary<Req, Res>(fn: (req: Req, md: Metadata) => Promise<Res>) {
  return (call: { request: Req; metadata: Metadata }, callback: (err: Partial<ServiceError> | null, res?: Res) => void) => {
    fn(call.request, call.metadata).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toGrpcError(err)),
    );
  };
}
