import { PonteError } from "@ponte/common";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";

export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  /** How loudly to log: client mistakes are routine, the coordinator away is a warning, bugs are errors. */
  level: "debug" | "warn" | "error";
}

export type ValidationTarget = "json" | "query" | "param" | "header" | "cookie" | "form";

const LOCATION: Record<ValidationTarget, string> = {
  json: "body",
  query: "query",
  param: "path",
  header: "header",
  cookie: "cookie",
  form: "body",
};

export interface FieldIssue {
  field: string;
  in: string;
  message: string;
}

/** Flattens zod issues into one entry per offending field (unknown keys each get their own). */
export function fieldIssues(target: ValidationTarget, error: z.ZodError): FieldIssue[] {
  const where = LOCATION[target];
  const out: FieldIssue[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ field: base ? `${base}.${key}` : key, in: where, message: "unknown field" });
    } else {
      out.push({ field: base || "(root)", in: where, message: issue.message });
    }
  }
  return out;
}

/**
 * The zod-openapi hook's verdict on a failed validation: a malformed path id is 400 INVALID_ID
 * (the path names a resource, it is not a form to correct); everything else is 422 with the fields.
 */
export function validationError(target: ValidationTarget, error: z.ZodError): PonteError {
  const fields = fieldIssues(target, error);
  if (target === "param") {
    return new PonteError("INVALID_ID", `malformed id in the path: ${fields.map((f) => f.field).join(", ")}`, { fields });
  }
  return new PonteError("VALIDATION_ERROR", "the request is invalid", { fields });
}

/** Any thrown value → status and the one error body shape. Unknown errors say nothing about themselves. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof PonteError) {
    const status = err.httpStatus;
    if (status >= 500 && status !== 503) {
      return { status: 500, body: errorBody("INTERNAL", "internal error", {}), level: "error" };
    }
    return { status, body: errorBody(err.code, err.message, err.details), level: status === 503 ? "warn" : "debug" };
  }
  if (err instanceof HTTPException) {
    // Hono raises these itself: the JSON validator on an unparseable body (400) and the media-type
    // gate of @hono/zod-openapi (415) — both mean "this body is not the JSON we take".
    if (err.status === 400 || err.status === 415) {
      const message = err.status === 415 ? "the body must be JSON sent with Content-Type: application/json" : "the body is not valid JSON";
      return { status: 400, body: errorBody("INVALID_JSON", message, {}), level: "debug" };
    }
    if (err.status === 413) return { status: 413, body: errorBody("PAYLOAD_TOO_LARGE", "the body is too large", {}), level: "debug" };
    if (err.status === 404) return { status: 404, body: errorBody("NOT_FOUND", "not found", {}), level: "debug" };
  }
  return { status: 500, body: errorBody("INTERNAL", "internal error", {}), level: "error" };
}

export const errorBody = (code: string, message: string, details: Record<string, unknown> = {}): ErrorBody => ({
  error: { code, message, details },
});
