// `dlc-prune config keys|show`: every config key with its default and meaning; the effective config.
import type { Argv, CommandModule } from "yargs";
import YAML from "yaml";
import { keysMarkdown } from "../config/keys.js";
import { UserError } from "../util/errors.js";
import { configFromArgs, withConfigFlags } from "./options.js";

export const configCommand: CommandModule = {
  command: "config <action>",
  describe: "keys: every config key (Markdown table); show: the effective config of --config and --set",
  builder: (y: Argv) => withConfigFlags(y.positional("action", { choices: ["keys", "show"] as const, demandOption: true }), {}),
  handler: async (argv) => {
    if (argv.action === "keys") {
      // keys prints the schema, whatever a recipe says: a recipe given here would be ignored, so it is refused.
      const given = (["config", "set"] as const).find((f) => argv[f] !== undefined);
      if (given) throw new UserError(`config keys lists every key of the schema and reads no recipe: --${given} goes with config show`);
      process.stdout.write(keysMarkdown() + "\n");
    } else process.stdout.write(YAML.stringify(await configFromArgs(argv, {})));
  },
};
