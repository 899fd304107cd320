// ../shared holds real models and datasets (read-only). Tests that need it skip, saying why, when it is absent.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "vitest";

export const SHARED_DIR = fileURLToPath(new URL("../../../shared/", import.meta.url));
export const STORIES_DIR = join(SHARED_DIR, "models/stories260K");
export const STORIES_BIN = join(STORIES_DIR, "stories260K.bin");
export const STORIES_TOK = join(STORIES_DIR, "tok512.bin");
export const DATASETS_DIR = join(SHARED_DIR, "datasets");
export const hasShared = existsSync(STORIES_BIN) && existsSync(STORIES_TOK);

export const SKIP_REASON = `skipped: ${SHARED_DIR} is absent; these tests need the real stories260K model and datasets (README "Development")`;

/**
 * `describe`, or, when ../shared is absent, a skipped one whose name says why. Its body is not run then: a
 * body that reads ../shared while the tests are collected would fail instead of skipping.
 */
export function describeWithShared(name: string, fn: () => void): void {
  if (hasShared) describe(name, fn);
  else describe.skip(`${name} [${SKIP_REASON}]`, () => it.skip(SKIP_REASON, () => {}));
}
