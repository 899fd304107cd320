// The demo's model (config key model.tiny) is built by the model kit on first use, before scoring; its
// scores are meaningless and the log says so.
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import { writeTinyModel } from "../kit/tiny.js";
import { UserError } from "../util/errors.js";
import { exists } from "../util/fs.js";

export async function ensureDemoModel(config: Pick<Config, "model">, log: (line: string) => void): Promise<void> {
  const { path, tiny } = config.model;
  if (!path) throw new UserError("missing key model.path (the model folder to score with)");
  if (!tiny) return;
  log(
    `model.tiny: ${path} is a tiny model with random weights: its DLC scores are meaningless (a demo of the pipeline, not of the method)`,
  );
  if (await exists(path)) return;
  log(`building it with the model kit (dlc-prune model tiny)`);
  await writeTinyModel(path, tiny).catch(async (err) => {
    if (!(await exists(join(path, "onnx")))) throw err; // else another process (a shard) built the same model first
  });
}
