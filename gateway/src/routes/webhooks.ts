import { createRoute } from "@hono/zod-openapi";
import { PonteError } from "@ponte/common";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { WebhookAckSchema, WebhookProviderParams } from "../schemas.js";
import { callOpts, errorResponse, jsonContent, type App, type RouteDeps } from "./common.js";

// PIX providers call back here. There is no JWT: the provider signs the body, and only the
// coordinator (which holds the provider's key) can check it — so the body goes through as the
// exact bytes received, never parsed or re-serialised here. Answers are for the provider's retry
// logic: 2xx stops it, 401/404 are final, 503 means "try again later".

/** Paths under this prefix skip the API's JSON body limit and take WEBHOOK_BODY_LIMIT_BYTES. */
export const WEBHOOK_PREFIX = "/api/v1/webhooks/";
export const WEBHOOK_BODY_LIMIT_BYTES = 64 * 1024;
const PROVIDER = /^[a-z0-9-]{1,32}$/;

const unknownProvider = (path: string) => new PonteError("NOT_FOUND", `no route for POST ${path}`);

/** A malformed provider name is a path nothing serves: 404 before the body is read. */
const checkProvider: MiddlewareHandler = async (c, next) => {
  if (!PROVIDER.test(c.req.param("provider") ?? "")) throw unknownProvider(c.req.path);
  await next();
};

const limit = bodyLimit({
  maxSize: WEBHOOK_BODY_LIMIT_BYTES,
  onError: () => {
    throw new PonteError("PAYLOAD_TOO_LARGE", `the body is larger than ${WEBHOOK_BODY_LIMIT_BYTES} bytes`, {
      limit_bytes: WEBHOOK_BODY_LIMIT_BYTES,
    });
  },
});

export function registerWebhookRoutes(app: App, deps: RouteDeps): void {
  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/webhooks/pix/{provider}",
      tags: ["webhooks"],
      summary: "A PIX provider's event (payout settled, failed, returned)",
      description:
        "No bearer token: the provider signs the body and the coordinator verifies the signature on the exact bytes " +
        `(at most ${WEBHOOK_BODY_LIMIT_BYTES} bytes) with the headers. Events are de-duplicated by their id. ` +
        "401 and 404 are final; 503 asks the provider to retry.",
      middleware: [checkProvider, limit] as const,
      request: {
        params: WebhookProviderParams,
        // A plain schema, not a zod one: no JSON validator may touch the bytes the signature covers.
        body: {
          required: true,
          content: { "application/json": { schema: { type: "object", description: "the provider's event, as it signed it" } } },
        },
      },
      responses: {
        200: jsonContent(WebhookAckSchema, "Received (duplicate: already received before)"),
        401: errorResponse("The signature does not verify (WEBHOOK_SIGNATURE_INVALID) or the event is too old (WEBHOOK_STALE)"),
        404: errorResponse("No such provider (NOT_FOUND)"),
        413: errorResponse(`The body is larger than ${WEBHOOK_BODY_LIMIT_BYTES} bytes (PAYLOAD_TOO_LARGE)`),
        503: errorResponse("The coordinator cannot take the event now (COORDINATOR_UNAVAILABLE, UNAVAILABLE): retry later"),
        500: errorResponse("Unexpected error (INTERNAL): retry later"),
      },
    }),
    async (c) => {
      const { provider } = c.req.valid("param");
      const rawBody = Buffer.from(await c.req.arrayBuffer());
      const headers: Record<string, string> = {};
      // Headers iterates lower-case names, repeated headers joined by ", ".
      for (const [name, value] of c.req.raw.headers) headers[name] = value;
      const ack = await deps.coordinator.ingestPixWebhook({ provider, rawBody, headers }, callOpts(c));
      return c.json(ack, 200);
    },
    (result, c) => {
      if (!result.success) throw unknownProvider(c.req.path);
      return undefined;
    },
  );
}
