import type { Logger } from "@ponte/common";
import type { BlockRef } from "../types.js";

/**
 * The height a follower reads next: one past its cursor or, with no cursor yet, the configured
 * start ("latest": the first head it sees). That start is fixed on first use, so a head that moves
 * before the first report does not move it, and logged once.
 */
export function createNextHeight(configured: bigint | "latest", logger: Logger): (cursor: BlockRef | null, headHeight: bigint) => bigint {
  let start: bigint | undefined;
  return (cursor, headHeight) => {
    if (cursor) return cursor.height + 1n;
    if (start === undefined) {
      start = configured === "latest" ? headHeight : configured;
      logger.info({ block_number: start.toString() }, "No cursor yet; starting at the configured height");
    }
    return start;
  };
}
