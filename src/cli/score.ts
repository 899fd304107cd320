// `dlc-prune score`: DLC scores of a dataset, as an Arrow file.
import type { Argv, CommandModule } from "yargs";
import { scoreOnly } from "../run/score.js";
import { configFromArgs, withConfigFlags, type FlagMap } from "./options.js";
import { interruptible } from "./interrupt.js";
import { scoreProgress } from "./progress.js";

export const SCORE_FLAGS: FlagMap = {
  data: "data.path",
  model: "model.path",
  out: "score.out",
  format: "data.format",
  template: "template",
  preset: "score.preset",
  levels: "score.levels",
  interval: "score.interval",
  scope: "score.scope",
  method: "score.method",
  "batch-tokens": "score.batch_tokens",
  "max-tokens": "score.max_tokens",
  device: "score.device",
  threads: "score.threads",
  seed: "score.seed",
  "on-error": "data.on_error",
  shard: "score.shard",
  shards: "score.shards",
};

export const scoreCommand: CommandModule = {
  command: "score",
  describe: "Score every row: response loss under progressively masked weights, averaged (DLC)",
  builder: (y: Argv) =>
    withConfigFlags(y, SCORE_FLAGS).option("restart", {
      type: "boolean",
      default: false,
      describe: "discard saved progress of an earlier run",
    }),
  handler: async (argv) => {
    const config = await configFromArgs(argv, SCORE_FLAGS);
    const progress = scoreProgress();
    await interruptible(
      (signal) =>
        scoreOnly(config, {
          restart: argv.restart as boolean,
          onProgress: progress.update,
          log: progress.log,
          signal,
          configFile: argv.config as string | undefined,
        }),
      progress.stop,
    );
  },
};
