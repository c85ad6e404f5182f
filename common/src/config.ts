import { z } from "zod";

export { z };

export class ConfigError extends Error {
  constructor(readonly issues: { field: string; message: string }[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  ${i.field}: ${i.message}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parses once at start-up; the error names every bad field. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) {
    throw new ConfigError(
      r.error.issues.map((i) => ({ field: i.path.map(String).join(".") || "(root)", message: i.message })),
    );
  }
  return r.data;
}

/** Common env field types. */
export const env = {
  port: (def: number) => z.coerce.number().int().min(0).max(65535).default(def),
  int: (def: number, min = 0) => z.coerce.number().int().min(min).default(def),
  bool: (def: boolean) =>
    z
      .enum(["true", "false", "1", "0"])
      .default(def ? "true" : "false")
      .transform((v) => v === "true" || v === "1"),
  url: () => z.string().url(),
};
