// Builds validated configs for tests the way a YAML recipe would.
import { parseConfig, setPath } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";

/** A config from dotted keys, e.g. { "data.path": f, "model.path": m, "score.levels": 3 }. */
export function testConfig(keys: Record<string, unknown>): Config {
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(keys)) setPath(raw, k, v);
  return parseConfig(raw, "test");
}

export const quiet = { log: () => {} };
