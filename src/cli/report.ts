// `dlc-prune report`: report.html and report.json for a finished select.
import type { Argv, CommandModule } from "yargs";
import { report } from "../run/report.js";

export const reportCommand: CommandModule<object, { "out-dir": string }> = {
  command: "report",
  describe: "Compare the kept ratios of a select output folder: report.html (plots) and report.json",
  builder: (y: Argv) =>
    y.option("out-dir", { type: "string", demandOption: true, describe: "the folder select wrote (manifest.json)" }) as never,
  handler: async (argv) => {
    await report(argv["out-dir"]);
    process.stdout.write(`wrote ${argv["out-dir"]}/report.html and report.json\n`);
  },
};
