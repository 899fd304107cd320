// Sharded scoring: the partition, 3 concurrent shard processes merged into exactly the single-process file,
// and merge refusing missing, duplicated or foreign shards.
import { spawn } from "node:child_process";
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readScoresFile } from "../../src/contract/file.js";
import { resolveShard } from "../../src/run/shard.js";
import { shardPath } from "../../src/contract/names.js";
import { ownsRow } from "../../src/score/plan.js";
import { CLI, runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";
import { tinyModel, writeJsonl } from "../helpers/fixtures.js";

const tmp = tempDir();

describe("the shard of a process", () => {
  it("comes from --shard, a Slurm array or a Kubernetes Indexed Job", () => {
    const array = (id: number, min: number, max: number, extra: Record<string, string> = {}) => ({
      SLURM_ARRAY_TASK_ID: String(id),
      SLURM_ARRAY_TASK_MIN: String(min),
      SLURM_ARRAY_TASK_MAX: String(max),
      ...extra,
    });
    expect(resolveShard("2/5", null, {})).toEqual({ index: 2, count: 5 });
    expect(resolveShard("0/1", null, array(3, 0, 3))).toBeNull(); // the flag wins; 1 shard = all rows
    expect(resolveShard(null, null, array(3, 0, 3, { SLURM_ARRAY_TASK_COUNT: "4" }))).toEqual({ index: 3, count: 4 });
    expect(resolveShard(null, null, array(2, 0, 3))).toEqual({ index: 2, count: 4 });
    expect(resolveShard(null, 6, { JOB_COMPLETION_INDEX: "5" })).toEqual({ index: 5, count: 6 });
    expect(resolveShard(null, null, {})).toBeNull();
    expect(() => resolveShard(null, null, { JOB_COMPLETION_INDEX: "1" })).toThrow("set score.shards");
    expect(() => resolveShard("3/3", null, {})).toThrow('"3/3" is not a shard I/N');
  });

  it("is never inferred from part of a Slurm array: the shard count must then be given", () => {
    const partial = "is not the whole range 0..N-1, so it does not tell the number of shards";
    // sbatch --array=1 (one shard resubmitted), --array=0,2, --array=10-13, --array=0-6:2, and no range at all.
    for (const env of [
      { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_MIN: "1", SLURM_ARRAY_TASK_MAX: "1", SLURM_ARRAY_TASK_COUNT: "1" },
      { SLURM_ARRAY_TASK_ID: "0", SLURM_ARRAY_TASK_MIN: "0", SLURM_ARRAY_TASK_MAX: "2", SLURM_ARRAY_TASK_COUNT: "2" },
      { SLURM_ARRAY_TASK_ID: "12", SLURM_ARRAY_TASK_MIN: "10", SLURM_ARRAY_TASK_MAX: "13", SLURM_ARRAY_TASK_COUNT: "4" },
      { SLURM_ARRAY_TASK_ID: "4", SLURM_ARRAY_TASK_MIN: "0", SLURM_ARRAY_TASK_MAX: "6", SLURM_ARRAY_TASK_STEP: "2" },
      { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "4" },
    ]) {
      expect(() => resolveShard(null, null, env), JSON.stringify(env)).toThrow(partial);
      expect(() => resolveShard(null, null, env)).toThrow(`--shard ${env.SLURM_ARRAY_TASK_ID}/N or score.shards N`);
    }
    const resubmitted = { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_MIN: "1", SLURM_ARRAY_TASK_MAX: "1", SLURM_ARRAY_TASK_COUNT: "1" };
    expect(resolveShard(null, 3, resubmitted)).toEqual({ index: 1, count: 3 });
    expect(resolveShard("1/3", null, resubmitted)).toEqual({ index: 1, count: 3 });
    expect(() => resolveShard(null, 1, { ...resubmitted, SLURM_ARRAY_TASK_ID: "3" })).toThrow('"3/1" is not a shard I/N');
  });

  it("names the layout of its shard files", () => {
    expect(shardPath("out/scores.arrow", { index: 1, count: 3 })).toBe("out/scores.shard-1-of-3.arrow");
  });
});

describe("sharded scoring", () => {
  const BLOCK = 8; // 50 rows in 7 blocks: shards 0, 1, 2 own 18, 16 and 16 rows
  let model: string;
  let data: string;
  let single: string;
  // With IFD: its pass over the responses alone is sharded like the levels.
  const base = () => [
    "score",
    "--data",
    data,
    "--model",
    model,
    "--batch-tokens",
    "96",
    "--set",
    "data.fields.id=id",
    "--set",
    "score.ifd=true",
    "--set",
    `score.block_rows=${BLOCK}`,
  ];
  const shardFiles = (prefix: string) => [0, 1, 2].map((i) => join(tmp, `${prefix}.shard-${i}-of-3.arrow`));

  beforeAll(async () => {
    model = await tinyModel();
    data = join(tmp, "rows.jsonl");
    const rows = Array.from({ length: 50 }, (_, i) => ({
      id: `r${i}`,
      prompt: `Write ${i % 7} words about ${["water", "a city", "the people"][i % 3]}.`,
      response: i % 11 === 5 ? "" : "The small city has water for the people. ".repeat(1 + (i % 4)),
    }));
    writeJsonl(data, rows);
    single = join(tmp, "single.arrow");
    const r = runCli([...base(), "--out", single]);
    expect(r.status, r.stderr).toBe(0);
  });

  it("3 concurrent shard processes (1 thread each) merge into exactly the single-process file", async () => {
    const out = join(tmp, "sharded.arrow");
    const codes = await Promise.all(
      [0, 1, 2].map(
        (i) =>
          new Promise<number>((resolve) => {
            const child = spawn(process.execPath, [CLI, ...base(), "--out", out, "--shard", `${i}/3`, "--threads", "1"], {
              stdio: "ignore",
            });
            child.on("exit", (code) => resolve(code ?? -1));
          }),
      ),
    );
    expect(codes).toEqual([0, 0, 0]);
    const parts = await Promise.all(shardFiles("sharded").map(readScoresFile));
    expect(parts.map((p) => p.meta.shard)).toEqual([0, 1, 2].map((index) => ({ index, count: 3 })));
    const rows = parts.flatMap((p) => Array.from(p.cols.row)).sort((a, b) => a - b);
    expect(rows).toEqual(Array.from({ length: 50 }, (_, i) => i)); // every row in exactly one shard
    // Each shard holds (and tokenized) the rows of its blocks: rows 0-7, 24-31 and 48-49 are shard 0's.
    parts.forEach((p, i) => expect(Array.from(p.cols.row).every((row) => ownsRow({ index: i, count: 3 }, BLOCK, row))).toBe(true));
    expect(parts.map((p) => p.cols.row.length)).toEqual([18, 16, 16]);

    const merged = join(tmp, "new-folder", "merged.arrow");
    const m = runCli(["merge", "--out", merged, ...shardFiles("sharded")]);
    expect(m.status, m.stderr).toBe(0);
    const a = await readScoresFile(merged);
    const b = await readScoresFile(single);
    expect(a.cols).toEqual(b.cols);
    expect(Array.from(a.cols.ifd!).filter((v) => !Number.isNaN(v)).length).toBeGreaterThan(40);
    expect(readFileSync(merged).equals(readFileSync(single))).toBe(true);
  });

  it("a shard past the last block of rows writes an empty shard file, saying why", async () => {
    const r = runCli([...base(), "--out", join(tmp, "few.arrow"), "--shard", "7/8"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("shard 7/8 owns no rows: the 50 rows make 7 blocks of score.block_rows 8, fewer than 8");
    expect((await readScoresFile(join(tmp, "few.shard-7-of-8.arrow"))).cols.row.length).toBe(0);
  });

  it("merge names a missing, duplicated or foreign shard", async () => {
    const [s0, s1, s2] = shardFiles("sharded");
    const fail = (args: string[], ...mentions: string[]) => {
      const r = runCli(["merge", "--out", join(tmp, "never.arrow"), ...args]);
      expect(r.status).toBe(1);
      for (const m of mentions) expect(r.stderr).toContain(m);
    };
    fail([s0!, s2!], "missing shard 1/3");
    const copy = join(tmp, "copy-of-shard-0.arrow");
    copyFileSync(s0!, copy);
    fail([s0!, s1!, s2!, copy], copy, "duplicates shard 0/3", s0!);
    const foreign = join(tmp, "foreign.arrow");
    expect(runCli([...base(), "--out", foreign, "--shard", "1/3", "--levels", "4"]).status).toBe(0);
    fail([s0!, join(tmp, "foreign.shard-1-of-3.arrow"), s2!], "foreign.shard-1-of-3.arrow", "a shard of another run", "levels: 3 -> 4");
    fail([single], single, "not a shard");
    // Data no row of which can be scored: each shard sees its own rows only, the merge refuses as one process does.
    const empty = writeJsonl(
      join(tmp, "empty.jsonl"),
      Array.from({ length: 12 }, (_, i) => ({ id: `e${i}`, prompt: `Say ${i}.`, response: "" })),
    );
    const onEmpty = base().map((a) => (a === data ? empty : a));
    const emptyShards = [0, 1].map((i) => join(tmp, `empty.shard-${i}-of-2.arrow`));
    for (const i of [0, 1]) {
      const r = runCli([...onEmpty, "--out", join(tmp, "empty.arrow"), "--shard", `${i}/2`]);
      expect(r.status, r.stderr).toBe(0);
    }
    fail(emptyShards, `${empty}: no row can be scored (0 ok, 0 truncated; 12 unscored (12 empty-response)`);
    const one = runCli([...onEmpty, "--out", join(tmp, "empty-single.arrow")]);
    expect(one.status).toBe(1);
    expect(one.stderr).toContain(`error: ${empty}: no row can be scored (12 empty-response)\n`);
  });

  it("run in a Slurm array task scores its shard and leaves selection to the merge", () => {
    const cfg = join(tmp, "array.yaml");
    writeFileSync(
      cfg,
      `data: { path: ${data} }\nmodel: { path: ${model} }\nscore: { out: ${join(tmp, "array/scores.arrow")} }\nselect: { out_dir: ${join(tmp, "array")} }\n`,
    );
    const r = runCli(["run", "--config", cfg], {
      env: { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_MIN: "0", SLURM_ARRAY_TASK_MAX: "1", SLURM_ARRAY_TASK_COUNT: "2" },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("scored shard 1/2");
    expect(readdirSync(join(tmp, "array"))).toEqual(["scores.shard-1-of-2.arrow"]);
  });

  it("run merges shard files given in score.merge, then selects", () => {
    const cfg = join(tmp, "merge.yaml");
    writeFileSync(
      cfg,
      `data: { path: ${data}, fields: { id: id } }\nscore: { out: ${join(tmp, "run-merged.arrow")}, merge: ["${join(tmp, "sharded.shard-*-of-3.arrow")}"] }\nselect: { ratios: [0.5], out_dir: ${join(tmp, "run-out")} }\n`,
    );
    const r = runCli(["run", "--config", cfg]);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(tmp, "run-merged.arrow")).equals(readFileSync(single))).toBe(true);
    // 45 scored rows (5 empty responses); FlexRand at 0.5, split 0.5: round(45 / 4) = 11 from each interval.
    expect(JSON.parse(readFileSync(join(tmp, "run-out/manifest.json"), "utf8")).outputs[0].rows.kept).toBe(22);
  });
});
