// `dlc-prune compare`: one report across the output folders of earlier runs over the same data.
import type { Argv, CommandModule } from "yargs";
import { compare } from "../run/report.js";

export const compareCommand: CommandModule<object, { dirs: string[]; out: string }> = {
  command: "compare <dirs..>",
  describe:
    "One report (report.html, report.json) comparing the output folders of earlier runs: other ratios, seeds, models or scorers over the same data",
  builder: (y: Argv) =>
    y
      .positional("dirs", { type: "string", array: true, describe: "output folders written by run or select (manifest.json)" })
      .option("out", {
        type: "string",
        demandOption: true,
        describe: "the folder to write the report to (new, empty, or an earlier compare's)",
      }) as never,
  handler: async (argv) => {
    await compare(argv.dirs, argv.out, { command: process.argv.slice(2) });
    process.stdout.write(`wrote ${argv.out}/report.html and report.json comparing ${argv.dirs.join(", ")}\n`);
  },
};
