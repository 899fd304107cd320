// Contradictions between config keys that are known before scoring are refused before scoring, by run,
// run --dry-run and estimate alike, naming the keys; nothing is written.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { alpacaRows, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();
let base: string[];

beforeAll(async () => {
  const model = await tinyModel();
  const data = writeJsonl(join(tmp, "d.jsonl"), alpacaRows(8));
  base = [
    "--set",
    `data.path=${data}`,
    "--set",
    `model.path=${model}`,
    "--set",
    `score.out=${join(tmp, "out/scores.arrow")}`,
    "--set",
    `select.out_dir=${join(tmp, "out")}`,
  ];
});

const CASES: [string, string[], RegExp][] = [
  [
    "a selection by ifd without score.ifd",
    ["--set", "score.ifd=false", "--set", "select.strategies=[flexrand, {strategy: hard, by: ifd}]"],
    /^dlc-prune: error: select ranks by ifd \(hard-by-ifd\) but score\.ifd is false: set score\.ifd: true, or rank by dlc or loss0\n$/,
  ],
  ["select.by ifd without score.ifd", ["--set", "select.by=ifd"], /select ranks by ifd \(flexrand-by-ifd\) but score\.ifd is false/],
  [
    "refinement with stratified selection",
    ["--set", "score.refine=boundary", "--set", "select.stratify=source"],
    /score\.refine boundary with select\.stratify source: .*use score\.refine none, or drop select\.stratify/,
  ],
  [
    "select.exclude by ifd without score.ifd",
    ["--set", "score.ifd=false", "--set", "select.exclude=[outliers, {score: ifd, above: 1}]"],
    /select\.exclude \{score: ifd\} needs IFD, but score\.ifd is false/,
  ],
  [
    "refinement with select.exclude",
    ["--set", "score.refine=boundary", "--set", "select.exclude=[duplicates]"],
    /score\.refine boundary with select\.exclude: .*use score\.refine none, or drop select\.exclude/,
  ],
  [
    "merging shards while naming one shard",
    ["--set", "score.merge=[x.arrow]", "--set", "score.shard=0/2"],
    /score\.merge with score\.shard 0\/2: a run either scores one shard or merges the shards/,
  ],
];

describe("contradictions are refused before scoring", () => {
  for (const [what, sets, message] of CASES)
    it(what, () => {
      for (const command of [["run"], ["run", "--dry-run"], ["estimate"]]) {
        const r = runCli([...command, "--config", "/dev/null", ...base, ...sets]);
        expect(r.status, `${command.join(" ")}: ${r.stderr}`).toBe(1);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).not.toMatch(/level 1|rows \(|calibrating/); // nothing was read or scored
        expect(existsSync(join(tmp, "out"))).toBe(false);
      }
    });
});
