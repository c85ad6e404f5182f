import type { ActorKind } from "./states.js";

/** "user:<id>", "admin:<id>", "system:<worker>", "agent:<network>" — stored and published as is. */
export interface Actor {
  kind: ActorKind;
  id: string;
}
export const actorString = (a: Actor): string => `${a.kind}:${a.id}`;
export const systemActor = (worker: string): Actor => ({ kind: "system", id: worker });
