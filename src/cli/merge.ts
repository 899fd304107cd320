// `dlc-prune merge`: one scores file from the shard files of a sharded scoring run.
import type { Argv, CommandModule } from "yargs";
import { mergeShardFiles } from "../run/merge.js";

export const mergeCommand: CommandModule<object, { out: string; shards: string[] }> = {
  command: "merge <shards..>",
  describe: "Merge the shard scores files of a sharded run (Slurm array, Kubernetes Indexed Job) into one",
  builder: (y: Argv) =>
    y
      .positional("shards", { type: "string", array: true, describe: "shard files (score --shard I/N wrote <out>.shard-I-of-N.arrow)" })
      .option("out", { type: "string", demandOption: true, describe: "the merged scores file" }) as never,
  handler: async (argv) => {
    const meta = await mergeShardFiles(argv.shards, argv.out, (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(`wrote ${argv.out}: ${meta.data.rows} rows from ${argv.shards.length} shards\n`);
  },
};
