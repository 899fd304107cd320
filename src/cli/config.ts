// `dlc-prune config keys|show`: every config key with its default and meaning; the effective config.
import type { Argv, CommandModule } from "yargs";
import YAML from "yaml";
import { keysMarkdown } from "../config/keys.js";
import { configFromArgs, withConfigFlags } from "./options.js";

export const configCommand: CommandModule = {
  command: "config <action>",
  describe: "keys: every config key (Markdown table); show: the effective config of --config and --set",
  builder: (y: Argv) => withConfigFlags(y.positional("action", { choices: ["keys", "show"] as const, demandOption: true }), {}),
  handler: async (argv) => {
    if (argv.action === "keys") process.stdout.write(keysMarkdown() + "\n");
    else process.stdout.write(YAML.stringify(await configFromArgs(argv, {})));
  },
};
