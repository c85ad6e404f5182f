import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    // Postgres and NATS for the real coordinator the agent tests run against.
    globalSetup: [fileURLToPath(import.meta.resolve("@ponte/common/testing/global-setup"))],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
