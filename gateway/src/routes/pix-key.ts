import { createRoute } from "@hono/zod-openapi";
import { isValidDocument, normalizeDocument, normalizePixKey, PonteError } from "@ponte/common";
import { principalOf, requireAuth } from "../auth/index.js";
import { PixKeySchema, PutPixKeyRequest } from "../schemas.js";
import { bearer, callOpts, errorResponses, jsonBody, jsonContent, type App, type RouteDeps } from "./common.js";

const PATH = "/api/v1/users/me/pix-key";

// The PIX key is the owner's own data, so it is answered in full; it is never logged (the request
// log carries no bodies, and the logger redacts pix_key fields).
export function registerPixKeyRoutes(app: App, deps: RouteDeps): void {
  const user = requireAuth(deps.auth);

  app.openapi(
    createRoute({
      method: "put",
      path: PATH,
      tags: ["users"],
      summary: "Register or replace the caller's PIX key (payouts go only to a key whose holder is the seller)",
      description:
        "When the token carries a document claim (set by the identity service), holder_document must equal it " +
        "(422 HOLDER_DOCUMENT_MISMATCH). A CPF or CNPJ key must be the holder's own document.",
      security: bearer,
      middleware: user,
      request: { body: jsonBody(PutPixKeyRequest) },
      responses: { 200: jsonContent(PixKeySchema, "The key as stored (normalised)"), ...errorResponses(400, 401, 413, 422, 503) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const principal = principalOf(c);
      const key = normalizePixKey(body.key_type, body.key);
      const holderDocument = normalizeDocument(body.holder_document);
      if (!isValidDocument(holderDocument)) {
        throw new PonteError("VALIDATION_ERROR", "the request is invalid", {
          fields: [{ field: "holder_document", in: "body", message: "must be a valid CPF or CNPJ" }],
        });
      }
      const identityDocument = principal.document === undefined ? "" : normalizeDocument(principal.document);
      if (identityDocument !== "" && identityDocument !== holderDocument) {
        throw new PonteError("HOLDER_DOCUMENT_MISMATCH", "holder_document is not the document of the account's owner", {
          field: "holder_document",
        });
      }
      // A CPF/CNPJ key is registered in the DICT to that very document: any other holder could never be paid.
      if ((body.key_type === "cpf" || body.key_type === "cnpj") && key !== holderDocument) {
        throw new PonteError("HOLDER_DOCUMENT_MISMATCH", `a ${body.key_type} key must be the holder's own document`, {
          field: "key",
        });
      }
      const stored = await deps.coordinator.putPixKey(
        {
          userId: principal.userId,
          keyType: body.key_type,
          key,
          holderDocument,
          holderName: body.holder_name,
          identityDocument,
        },
        callOpts(c),
      );
      return c.json(stored, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: PATH,
      tags: ["users"],
      summary: "The caller's PIX key",
      security: bearer,
      middleware: user,
      responses: { 200: jsonContent(PixKeySchema, "The registered key"), ...errorResponses(401, 404, 503) },
    }),
    async (c) => c.json(await deps.coordinator.getPixKey({ userId: principalOf(c).userId }, callOpts(c)), 200),
  );
}
