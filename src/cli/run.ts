// `dlc-prune run`: the whole job from a YAML recipe.
import type { Argv, CommandModule } from "yargs";
import { run } from "../run/pipeline.js";
import { configFromArgs, withConfigFlags } from "./options.js";
import { scoreProgress } from "./progress.js";

export const runCommand: CommandModule = {
  command: "run",
  describe: "Score (resuming when possible), select, write and report, as a config file says",
  builder: (y: Argv) =>
    withConfigFlags(y, {})
      .demandOption("config")
      .option("restart", { type: "boolean", default: false, describe: "rescore from scratch (ignore saved progress and an up-to-date scores file)" }),
  handler: async (argv) => {
    const config = await configFromArgs(argv, {});
    const progress = scoreProgress();
    try {
      await run(config, { restart: argv.restart as boolean, onProgress: progress.update, configFile: argv.config as string | undefined, command: process.argv.slice(2) });
    } finally {
      progress.stop();
    }
  },
};
