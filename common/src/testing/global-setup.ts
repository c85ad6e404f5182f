// vitest globalSetup shared by the packages: finds or starts Postgres and NATS once per run.
import { provisionNats } from "./nats.js";
import { provisionPostgres } from "./postgres.js";

export default async function setup(): Promise<() => Promise<void>> {
  const pg = await provisionPostgres();
  const nats = await provisionNats();
  return async () => {
    await nats.stop();
    await pg.stop();
  };
}
