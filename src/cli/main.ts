#!/usr/bin/env node
// The dlc-prune command line: one thin yargs command per verb.
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { Interrupted, UserError, isSystemError, systemErrorMessage } from "../util/errors.js";
import { TOOL_VERSION } from "../version.js";
import { modelCommand } from "./model.js";
import { scoreCommand } from "./score.js";
import { selectCommand } from "./select.js";
import { reportCommand } from "./report.js";
import { compareCommand } from "./compare.js";
import { runCommand } from "./run.js";
import { configCommand } from "./config.js";
import { estimateCommand } from "./estimate.js";
import { mergeCommand } from "./merge.js";

/** A user-caused condition (input, config, model, disk, permissions) is one line and exit 1; a bug shows its stack. */
function fail(err: unknown): never {
  if (err instanceof Interrupted) {
    process.stderr.write("interrupted: rerun the same command to resume\n");
    process.exit(130);
  }
  if (err instanceof UserError || isSystemError(err)) {
    process.stderr.write(`dlc-prune: error: ${err instanceof UserError ? err.message : systemErrorMessage(err)}\n`);
    process.exit(1);
  }
  process.stderr.write(`dlc-prune: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(2);
}

try {
  await yargs(hideBin(process.argv))
    .scriptName("dlc-prune")
    .version(TOOL_VERSION)
    .command(runCommand)
    .command(estimateCommand)
    .command(scoreCommand)
    .command(mergeCommand)
    .command(selectCommand)
    .command(reportCommand)
    .command(compareCommand)
    .command(modelCommand)
    .command(configCommand)
    .demandCommand(1, "name a command: run, estimate, score, merge, select, report, compare, model, config")
    .strict()
    .fail((msg, err) => fail(err ?? new UserError(msg)))
    .parseAsync();
} catch (err) {
  fail(err);
}
