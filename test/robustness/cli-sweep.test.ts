// A sweep of command-line misuse and hostile input across every command: each case ends with exit 1 and one
// error line that names the file, row or key, the problem and the way out; none exits with a signal (segfault,
// abort), none prints a stack trace or an internal error.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "../helpers/cli.js";
import { alpacaRows, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-sweep-");
let model: string;
let data: string;

beforeAll(async () => {
  model = await tinyModel();
  data = writeJsonl(join(tmp, "d.jsonl"), alpacaRows(6));
  mkdirSync(join(tmp, "folder"));
  mkdirSync(join(tmp, "rows.jsonl")); // a folder named like a data file
});

/** Exit 1, no signal, no stack; one error line, the last (progress lines may come before it), matching `says`. */
function oneLine(r: CliResult, says: RegExp): void {
  expect(r.signal ?? null, r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(1);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(
    lines.filter((l) => l.startsWith("dlc-prune: ")),
    r.stderr,
  ).toHaveLength(1);
  expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
  expect(lines.at(-1)).toMatch(/^dlc-prune: error: /);
  expect(lines.at(-1)).toMatch(says);
}

const CASES: [string, () => string[], RegExp][] = [
  // What yargs says, with the command and the way out.
  [
    "merge without shard files",
    () => ["merge", "--out", join(tmp, "m.arrow")],
    /^dlc-prune: error: merge: name the shard files to merge: dlc-prune merge --out S\.arrow SHARD\.arrow \.\.\.$/,
  ],
  [
    "compare without folders",
    () => ["compare", "--out", join(tmp, "c")],
    /compare: name the output folders to compare: dlc-prune compare DIR DIR \.\.\. --out DIR$/,
  ],
  [
    "a stray argument",
    () => ["select", "--data", data, "--scores", "s.arrow", "--out-dir", "o", "--split", "0.4", "1"],
    /select: unknown argument 1: dlc-prune select --help lists the options \(a flag takes one value; a list flag takes commas, e.g\. --ratio 0\.1,0\.3\)$/,
  ],
  [
    "an unknown flag",
    () => ["score", "--data", data, "--model", model, "--out", "x.arrow", "--levle", "2"],
    /score: unknown argument levle: dlc-prune score --help/,
  ],
  ["a missing required flag", () => ["report"], /report: Missing required argument: out-dir; see dlc-prune report --help$/],
  ["no command", () => [], /name a command: run, estimate, score, merge, select, report, compare, model, config; see dlc-prune --help$/],
  ["an unknown command", () => ["prune"], /unknown argument prune: dlc-prune --help lists the options/],
  [
    "a bad choice",
    () => ["select", "--data", data, "--scores", "s.arrow", "--out-dir", "o", "--strategy", "best"],
    /select: Invalid values: .*best.*; see dlc-prune select --help$/,
  ],
  // Config.
  ["an empty --config", () => ["run", "--config", ""], /--config: the file name is empty; name a YAML recipe/],
  [
    "a key through __proto__",
    () => ["config", "show", "--set", "data.path=x", "--set", "__proto__={score: {levels: 9}}"],
    /key __proto__: __proto__ cannot be a config key/,
  ],
  ["a mistyped key", () => ["config", "show", "--set", "data.path=x", "--set", "select.ratio=[0.3]"], /did you mean select\.ratios\?$/],
  [
    "too many threads",
    () => ["score", "--data", data, "--model", model, "--out", join(tmp, "t.arrow"), "--threads", "100000"],
    /key score\.threads: at most 1024 threads, got 100000 \(from --threads\)$/,
  ],
  // Files that are not what they should be.
  [
    "a folder as the data file",
    () => ["score", "--data", join(tmp, "rows.jsonl"), "--model", model, "--out", join(tmp, "f.arrow")],
    /rows\.jsonl: is a folder, expected a file/,
  ],
  ["a folder as the recipe", () => ["run", "--config", join(tmp, "folder")], /folder.*is a folder, expected a file/],
  [
    "a missing model folder",
    () => ["score", "--data", data, "--model", join(tmp, "nope"), "--out", join(tmp, "n.arrow")],
    /nope.*model folder not found/,
  ],
];

describe("command-line misuse is one line, never a crash", () => {
  for (const [what, args, says] of CASES) it(what, () => oneLine(runCli(args()), says), 60_000);
});
