import type { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Logger } from "@ponte/common";
import type { RequestIdVariables } from "hono/request-id";
import type { Authenticator, AuthVariables } from "../auth/index.js";
import type { CallOpts, Coordinator } from "../coordinator/index.js";
import { ErrorSchema } from "../schemas.js";

export type AppEnv = { Variables: RequestIdVariables & AuthVariables };
export type App = OpenAPIHono<AppEnv>;

export interface RouteDeps {
  coordinator: Coordinator;
  auth: Authenticator;
  logger: Logger;
}

const DESCRIPTIONS: Record<number, string> = {
  400: "Malformed JSON (INVALID_JSON) or a malformed id (INVALID_ID)",
  401: "Missing, expired or invalid token (UNAUTHENTICATED)",
  403: "The caller's role may not do this (FORBIDDEN)",
  404: "No such resource, or not the caller's",
  409: "The resource's state forbids this (QUOTE_EXPIRED, INVALID_STATE, IDEMPOTENCY_KEY_REUSED, …)",
  413: "The body is larger than the limit (PAYLOAD_TOO_LARGE)",
  422: "Fields missing, of the wrong type, unknown, or refused (VALIDATION_ERROR, INVALID_AMOUNT, …)",
  500: "Unexpected error (INTERNAL); logged with the request id",
  503: "The coordinator is unreachable (COORDINATOR_UNAVAILABLE), or NO_DEPOSIT_ADDRESS / PRICE_UNAVAILABLE",
};

/** One documented error response: the error body, with what it means on this route. */
export const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: ErrorSchema } } });

/** The error responses a route documents; every one has the same body. */
export function errorResponses(...statuses: (keyof typeof DESCRIPTIONS)[]) {
  const out: Record<string, ReturnType<typeof errorResponse>> = {};
  for (const s of [...statuses, 500]) out[String(s)] = errorResponse(DESCRIPTIONS[s] ?? "Error");
  return out;
}

export const jsonContent = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const jsonBody = <T extends z.ZodType>(schema: T, required = true) => ({
  required,
  content: { "application/json": { schema } },
});

export const bearer = [{ bearer: [] }];

/** Forwards the request id so the coordinator's log lines join the gateway's. */
export const callOpts = (c: { get(key: "requestId"): string }): CallOpts => ({ requestId: c.get("requestId") });
