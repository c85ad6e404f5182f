import { createRoute } from "@hono/zod-openapi";
import { principalOf, requireAuth } from "../auth/index.js";
import { CustodialAccountParams, CustodialAccountSchema, NetworkParams, PutCustodialAccountRequest } from "../schemas.js";
import { bearer, callOpts, errorResponses, jsonBody, jsonContent, type App, type RouteDeps } from "./common.js";

/**
 * Custodial wallets: the desk registers which address (and custodial derivation index) a user's
 * wallet has on a network; the user may then sell from it with "source": "custodial".
 */
export function registerCustodialRoutes(app: App, deps: RouteDeps): void {
  const user = requireAuth(deps.auth);
  const admin = requireAuth(deps.auth, { role: "admin" });
  const ADMIN_PATH = "/api/v1/admin/custodial-accounts/{network}/{user_id}";

  app.openapi(
    createRoute({
      method: "put",
      path: ADMIN_PATH,
      tags: ["admin"],
      summary: "Admin: register or move a user's custodial wallet on a network",
      description:
        "The address must be the one the network's agent derives at derivation_index on its custodial account path; " +
        "the agent refuses to move funds from any other. Another user's address or index is 409 INVALID_STATE.",
      security: bearer,
      middleware: admin,
      request: { params: CustodialAccountParams, body: jsonBody(PutCustodialAccountRequest) },
      responses: { 200: jsonContent(CustodialAccountSchema, "The wallet as stored"), ...errorResponses(400, 401, 403, 409, 413, 422, 503) },
    }),
    async (c) => {
      const { network, user_id } = c.req.valid("param");
      const body = c.req.valid("json");
      const stored = await deps.coordinator.putCustodialAccount(
        { userId: user_id, network, address: body.address, derivationIndex: body.derivation_index },
        callOpts(c),
      );
      return c.json(stored, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: ADMIN_PATH,
      tags: ["admin"],
      summary: "Admin: a user's custodial wallet on a network",
      security: bearer,
      middleware: admin,
      request: { params: CustodialAccountParams },
      responses: { 200: jsonContent(CustodialAccountSchema, "The wallet"), ...errorResponses(401, 403, 409, 422, 503) },
    }),
    async (c) => {
      const { network, user_id } = c.req.valid("param");
      return c.json(await deps.coordinator.getCustodialAccount({ userId: user_id, network }, callOpts(c)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/users/me/custodial-accounts/{network}",
      tags: ["users"],
      summary: "The caller's custodial wallet on a network (409 CUSTODIAL_ACCOUNT_NOT_FOUND when none)",
      security: bearer,
      middleware: user,
      request: { params: NetworkParams },
      responses: { 200: jsonContent(CustodialAccountSchema, "The wallet"), ...errorResponses(401, 409, 422, 503) },
    }),
    async (c) => {
      const { network } = c.req.valid("param");
      return c.json(await deps.coordinator.getCustodialAccount({ userId: principalOf(c).userId, network }, callOpts(c)), 200);
    },
  );
}
