// `dlc-prune select`: <selection>-<ratio>/train.parquet per selection and ratio from a scores file, with a manifest.
import type { Argv, CommandModule } from "yargs";
import { describeOutputs, selectAndWrite } from "../run/select.js";
import { configFromArgs, withConfigFlags, type FlagMap } from "./options.js";

export const SELECT_FLAGS: FlagMap = {
  data: "data.path",
  scores: "score.out",
  ratio: "select.ratios",
  "out-dir": "select.out_dir",
  strategy: "select.strategy",
  strategies: "select.strategies",
  by: "select.by",
  split: "select.split",
  seed: "select.seed",
  stratify: "select.stratify",
  nested: "select.nested",
  unscored: "select.unscored",
};

export const selectCommand: CommandModule = {
  command: "select",
  describe: "Keep a share of the rows by DLC, loss0 or IFD (FlexRand or a baseline) and write them as Parquet, per strategy and ratio",
  builder: (y: Argv) => withConfigFlags(y, SELECT_FLAGS),
  handler: async (argv) => {
    const config = await configFromArgs(argv, SELECT_FLAGS);
    const { manifest } = await selectAndWrite(config, { configFile: argv.config as string | undefined, command: process.argv.slice(2) });
    for (const line of describeOutputs(config.select.out_dir, manifest)) process.stdout.write(line + "\n");
  },
};
