#!/usr/bin/env node
// The dlc-prune command line: one thin yargs command per verb. Only the command being run is loaded (with the
// libraries of its stages): Node's module loader opens every file of a module graph at once, so loading all of
// them would need hundreds of open files before any command runs. Everything but errors.js is imported inside
// the error handling below, so a failure to load is one line too.
import { readFileSync } from "node:fs";
import { Interrupted, UserError, isSystemError, systemErrorMessage } from "../util/errors.js";

type Command = import("yargs").CommandModule<object, never>;

/** Each verb's command module, loaded on demand. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import("./run.js")).runCommand as Command,
  estimate: async () => (await import("./estimate.js")).estimateCommand as Command,
  score: async () => (await import("./score.js")).scoreCommand as Command,
  merge: async () => (await import("./merge.js")).mergeCommand as Command,
  select: async () => (await import("./select.js")).selectCommand as Command,
  report: async () => (await import("./report.js")).reportCommand as Command,
  compare: async () => (await import("./compare.js")).compareCommand as Command,
  model: async () => (await import("./model.js")).modelCommand as Command,
  config: async () => (await import("./config.js")).configCommand as Command,
};

/**
 * The soft limit of open files (Linux), for the message when it is what stopped us: read before anything is
 * loaded, as afterwards the limit may be what keeps the file from being opened.
 */
const OPEN_FILES_LIMIT: string | undefined = (() => {
  try {
    return /^Max open files\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1];
  } catch {
    return undefined;
  }
})();

const RAISE_LIMIT = "raise it (e.g. ulimit -n 4096) and rerun";

/**
 * Loads part of dlc-prune. A low limit of open files fails here as EMFILE, or as "Cannot find package" when the
 * loader's look-up of a package hit the limit: both are said as what they are, with what to do.
 */
async function load<T>(what: () => Promise<T>): Promise<T> {
  try {
    return await what();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENFILE")
      throw new UserError(
        "cannot load dlc-prune: too many open files in the system; close some programs, or raise the system's limit (fs.file-max), and rerun",
      );
    const limit = OPEN_FILES_LIMIT;
    if (code === "EMFILE")
      throw new UserError(`cannot load dlc-prune: too many open files (the limit, ulimit -n, is ${limit ?? "low"}): ${RAISE_LIMIT}`);
    if (code === "ERR_MODULE_NOT_FOUND") {
      const reason = (err as Error).message.split("\n")[0];
      const low = limit !== undefined && limit !== "unlimited" && Number(limit) < 1024;
      throw new UserError(
        `cannot load dlc-prune (${reason}): ${low ? `the limit of open files (ulimit -n) is ${limit}, likely too low for loading it: ${RAISE_LIMIT}; if it persists, reinstall (npm ci)` : "the installation is incomplete: reinstall (npm ci)"}`,
      );
    }
    throw err;
  }
}

/** What a command needs besides its options, for a message that says how to call it. */
const NEEDS: Record<string, string> = {
  merge: "name the shard files to merge: dlc-prune merge --out S.arrow SHARD.arrow ...",
  compare: "name the output folders to compare: dlc-prune compare DIR DIR ... --out DIR",
  model: "name what to build: dlc-prune model tiny --out DIR, or dlc-prune model import-llama2c ...",
  config: "name what to print: dlc-prune config keys, or dlc-prune config show --config FILE",
};

/** yargs' own messages, said with the command they are about and the way out. */
function usageError(msg: string, verb: string | undefined): UserError {
  const help = `dlc-prune ${verb ? `${verb} ` : ""}--help`;
  if (/^Not enough non-option arguments/.test(msg) && verb && NEEDS[verb]) return new UserError(`${verb}: ${NEEDS[verb]}`);
  const unknown = /^Unknown arguments?: (.*)$/.exec(msg);
  if (unknown)
    return new UserError(
      `${verb ? `${verb}: ` : ""}unknown argument${unknown[1]!.includes(",") ? "s" : ""} ${unknown[1]}: ${help} lists the options (a flag takes one value; a list flag takes commas, e.g. --ratio 0.1,0.3)`,
    );
  return new UserError(`${verb ? `${verb}: ` : ""}${msg.replace(/\n+/g, " ")}; see ${help}`);
}

/** A user-caused condition (input, config, model, disk, permissions) is one line and exit 1; a bug shows its stack. */
function fail(err: unknown): never {
  if (err instanceof Interrupted) {
    process.stderr.write("interrupted: rerun the same command to resume\n");
    process.exit(130);
  }
  if (err instanceof UserError || isSystemError(err)) {
    let message = err instanceof UserError ? err.message : systemErrorMessage(err);
    if (isSystemError(err) && err.code === "EMFILE")
      message += ` (the limit of open files, ulimit -n, is ${OPEN_FILES_LIMIT ?? "low"}: ${RAISE_LIMIT})`;
    process.stderr.write(`dlc-prune: error: ${message}\n`);
    process.exit(1);
  }
  process.stderr.write(`dlc-prune: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(2);
}

try {
  const [{ default: yargs }, { hideBin }, { TOOL_VERSION }] = await load(() =>
    Promise.all([import("yargs"), import("yargs/helpers"), import("../version.js")]),
  );
  const args = hideBin(process.argv);
  // The verb is the first word; without one (--help, or flags first) every command is loaded, --version needs none.
  const verb = args.find((a) => !a.startsWith("-"));
  const names =
    verb !== undefined && Object.hasOwn(COMMANDS, verb)
      ? [verb]
      : verb === undefined && args.includes("--version")
        ? []
        : Object.keys(COMMANDS);
  const commands = await load(() => Promise.all(names.map((name) => COMMANDS[name]!())));
  let cli = yargs(args).scriptName("dlc-prune").version(TOOL_VERSION);
  for (const command of commands) cli = cli.command(command);
  await cli
    .demandCommand(1, `name a command: ${Object.keys(COMMANDS).join(", ")}`)
    .strict()
    .fail((msg, err) => fail(err ?? usageError(msg, verb !== undefined && Object.hasOwn(COMMANDS, verb) ? verb : undefined)))
    .parseAsync();
} catch (err) {
  fail(err);
}
