import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    globalSetup: [fileURLToPath(import.meta.resolve("@ponte/common/testing/global-setup"))],
    // Generous for a loaded CI machine (a quiet one runs the suite in well under a minute).
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Each file runs whole stacks (Postgres, anvil, NATS, five Node processes): one at a time on 2 cores.
    fileParallelism: false,
  },
});
