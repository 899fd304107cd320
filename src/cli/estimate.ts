// `dlc-prune estimate` (and `run --dry-run`): the cost of a run on this machine, printed, nothing written.
import type { Argv, CommandModule } from "yargs";
import type { Config } from "../config/schema.js";
import { estimate, type Estimate } from "../run/estimate.js";
import { describeCounts } from "../util/counts.js";
import { UserError } from "../util/errors.js";
import { configFromArgs, withConfigFlags } from "./options.js";
import { formatDuration } from "./progress.js";

/** --limit and --sample, for estimate and run --dry-run. */
export function withSliceFlags<T>(y: Argv<T>): Argv<T> {
  return y.option("limit", { type: "number", describe: "read only the first N rows (try a recipe on a slice)" }).option("sample", {
    type: "boolean",
    default: false,
    describe: "with --limit: a seeded sample of N rows instead, its costs scaled to all rows",
  }) as Argv<T>;
}

export function describeEstimate(e: Estimate): string {
  const t = e.seconds;
  const scored = (e.by_status.ok ?? 0) + (e.by_status.truncated ?? 0);
  const slice =
    e.rows.read < e.rows.total
      ? e.rows.sampled
        ? ` (a sample of ${e.rows.read}, scaled to all rows)`
        : ` (the first ${e.rows.read} of ${e.rows.total})`
      : "";
  return [
    `rows: ${e.rows.sampled ? e.rows.total : e.rows.read}${slice}: ${scored} to score, by status ${describeCounts(e.by_status)}`,
    `tokens per pass: ${e.tokens_per_pass} in ${e.batches} batches (padding ${(100 * e.padding).toFixed(1)}%), ${e.levels} levels, on ${e.device}`,
    `expected wall time: ${formatDuration(t.total)} (loading ${t.load.toFixed(1)}s, tokenizing ${t.tokenize.toFixed(1)}s, ${e.levels} x (${e.device === "cuda" ? "masking and session" : "masking"} ${t.per_level_setup.toFixed(1)}s + pass ${t.per_pass.toFixed(1)}s)${t.ifd_pass ? ` + the responses alone (IFD) ${t.ifd_pass.toFixed(1)}s` : ""}, reading and writing the data ${t.inspect_and_write.toFixed(1)}s)`,
    `likely between ${formatDuration(t.total_range[0])} and ${formatDuration(t.total_range[1])}: the calibration's batches ran ${t.per_pass_spread[0].toFixed(2)}-${t.per_pass_spread[1].toFixed(2)} x their fitted time${e.refine ? `, and the masked levels run on ${(100 * e.refine_share).toFixed(0)}-100% of the rows` : ""}`,
    `peak memory: ${Math.round(e.peak_rss_mib)} MiB (while calibrating: the model, a session and a batch)`,
    ...(e.refine
      ? [
          'score.refine boundary: the masked levels run only on the calibration rows and the rows near a boundary, known once level 0 has run: the expected wall time prices them as full levels (an upper bound; README "Cheaper DLC" has measured savings)',
        ]
      : []),
  ].join("\n");
}

/** --sample needs --limit (the sample's size): refused rather than ignored. */
export function checkSliceFlags(argv: Record<string, unknown>): void {
  if (argv.sample && argv.limit === undefined) throw new UserError("--sample needs --limit N (the size of the sample)");
}

export async function printEstimate(config: Config, argv: Record<string, unknown>): Promise<void> {
  checkSliceFlags(argv);
  const e = await estimate(config, {
    limit: argv.limit as number | undefined,
    sample: argv.sample as boolean,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(describeEstimate(e) + "\n");
}

export const estimateCommand: CommandModule = {
  command: "estimate",
  describe: "What a run would cost here: rows, tokens, padding, wall time and memory from a calibration pass; nothing written",
  builder: (y: Argv) => withSliceFlags(withConfigFlags(y, {}).demandOption("config")),
  handler: async (argv) => printEstimate(await configFromArgs(argv, {}), argv),
};
