// `dlc-prune run`: the whole job from a YAML recipe.
import type { Argv, CommandModule } from "yargs";
import { run } from "../run/pipeline.js";
import { UserError } from "../util/errors.js";
import { configFromArgs, withConfigFlags } from "./options.js";
import { printEstimate, withSliceFlags } from "./estimate.js";
import { interruptible } from "./interrupt.js";
import { scoreProgress } from "./progress.js";

export const runCommand: CommandModule = {
  command: "run",
  describe: "Score (resuming when possible), select, write and report, as a config file says",
  builder: (y: Argv) =>
    withSliceFlags(
      withConfigFlags(y, {})
        .demandOption("config")
        .option("restart", {
          type: "boolean",
          default: false,
          describe: "rescore from scratch (ignore saved progress and an up-to-date scores file)",
        })
        .option("dry-run", {
          type: "boolean",
          default: false,
          describe: "print what the run would cost (dlc-prune estimate) and write nothing",
        }),
    ),
  handler: async (argv) => {
    // A run scores every row: a slice is for the estimate only, refused rather than silently ignored.
    if (!argv["dry-run"] && (argv.limit !== undefined || argv.sample))
      throw new UserError(
        `${argv.limit !== undefined ? "--limit" : "--sample"} goes with --dry-run (the estimate of a slice); a run scores every row of data.path: to run on a slice, write its rows to a file of their own`,
      );
    const config = await configFromArgs(argv, {});
    if (argv["dry-run"]) return printEstimate(config, argv);
    const progress = scoreProgress();
    await interruptible(
      (signal) =>
        run(config, {
          restart: argv.restart as boolean,
          onProgress: progress.update,
          log: progress.log,
          signal,
          configFile: argv.config as string | undefined,
          command: process.argv.slice(2),
        }),
      progress.stop,
    );
  },
};
