// No accepted-and-ignored flag: every option that `--help` lists, for every command, either changes what the
// command does (checked here on its outputs) or is refused with a message naming it. A new option fails the
// first test until it gets a check below.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "../helpers/cli.js";
import { readParquetRows } from "../helpers/duckdb.js";
import { tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { writeCheckpoint } from "../helpers/hf-checkpoint.js";
import { SKIP_REASON, STORIES_BIN, STORIES_TOK, hasShared } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-flags-");
let n = 0;
const fresh = (name: string) => join(tmp, `${name}-${n++}`);

const COMMANDS = [
  "run",
  "estimate",
  "score",
  "merge",
  "select",
  "report",
  "compare",
  "model tiny",
  "model import-llama2c",
  "model import-hf",
  "config keys",
  "config show",
];

/** The options `dlc-prune <command> --help` lists, without --help and --version. */
function listedOptions(command: string): string[] {
  const r = runCli([...command.split(" "), "--help"]);
  expect(r.status, r.stderr).toBe(0);
  return [...r.stdout.matchAll(/^\s+(--[a-z0-9-]+)/gm)].map((m) => m[1]!).filter((o) => o !== "--help" && o !== "--version");
}

function ok(r: CliResult): CliResult {
  expect(r.status, r.stderr).toBe(0);
  return r;
}

/** Refused: exit 1, and the last line (after any progress lines) is one error line naming `flag`. */
function refused(r: CliResult, flag: string): void {
  expect(r.status, r.stderr).toBe(1);
  const lines = r.stderr.trimEnd().split("\n");
  expect(
    lines.filter((l) => l.startsWith("dlc-prune: error: ")),
    r.stderr,
  ).toHaveLength(1);
  expect(lines.at(-1)).toMatch(new RegExp(`^dlc-prune: error: .*${flag.replace(/[-.]/g, "\\$&")}`));
}

/** The run record (and shard) a scores file carries. */
const metaOf = (file: string) => JSON.parse(tableFromIPC(readFileSync(file)).schema.metadata.get("dlc_prune")!) as Record<string, any>;
const statusesOf = (file: string) => [...tableFromIPC(readFileSync(file)).getChild("status")!] as string[];
const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Record<string, any>;
const keptIds = async (file: string) => (await readParquetRows(file)).map((r) => r.id as string).sort();

let model: string;
let data: string;
let scores: string;
const rows = Array.from({ length: 30 }, (_, i) => ({
  id: `r${String(i).padStart(2, "0")}`,
  instruction: `Write ${i % 4} words about ${["rain", "the sea", "a town"][i % 3]}.`,
  input: "",
  output: i === 29 ? "" : `Here are ${i} words about it, and ${"more ".repeat(i % 5)}words.`,
  source: i < 20 ? "a" : "b",
}));

/** `score` of `data` (default: the shared rows) with the tiny model at 2 levels, plus `extra`. */
const score = (extra: string[], { out = fresh("s") + ".arrow", on = "", env = {} as NodeJS.ProcessEnv } = {}) => ({
  out,
  r: runCli(
    [
      "score",
      "--data",
      on || data,
      "--model",
      model,
      "--out",
      out,
      ...(extra.includes("--levels") || extra.includes("--preset") ? [] : ["--levels", "2"]),
      ...extra,
    ],
    { env },
  ),
});
/** `select` of the shared scores into a fresh folder, plus `extra` (ratio 0.8 unless given). */
const select = (extra: string[], dir = fresh("sel")) => ({
  dir,
  r: runCli([
    "select",
    "--data",
    data,
    "--scores",
    scores,
    "--out-dir",
    dir,
    ...(extra.includes("--ratio") ? [] : ["--ratio", "0.8"]),
    ...extra,
  ]),
});
/** A recipe over the data and model, writing under a fresh folder (the recipe's name without .yaml). */
function recipe(extra = ""): { file: string; dir: string } {
  const dir = fresh("recipe");
  const file = `${dir}.yaml`;
  writeFileSync(
    file,
    `data: {path: ${data}, fields: {id: id}}\nmodel: {path: ${model}}\nscore: {levels: 2, out: ${dir}/scores.arrow}\nselect: {ratios: [0.5], out_dir: ${dir}}\n${extra}`,
  );
  return { file, dir };
}

beforeAll(async () => {
  model = await tinyModel();
  data = writeJsonl(join(tmp, "data.jsonl"), rows);
  const first = score(["--set", "data.fields.id=id"]);
  ok(first.r);
  scores = first.out;
}, 120_000);

/** Each check covers the options it names (several per invocation where their effects show apart). */
const CHECKS: { options: string[]; check: () => void | Promise<void>; needsShared?: boolean }[] = [
  {
    options: ["run --config", "run --set"],
    check: () => {
      const { file, dir } = recipe();
      ok(runCli(["run", "--config", file, "--set", "select.ratios=[0.4]"]));
      expect(existsSync(join(dir, "flexrand-0.4/train.parquet"))).toBe(true);
      expect(existsSync(join(dir, "flexrand-0.5/train.parquet"))).toBe(false);
    },
  },
  {
    options: ["run --restart"],
    check: () => {
      const { file } = recipe();
      ok(runCli(["run", "--config", file]));
      expect(ok(runCli(["run", "--config", file])).stderr).toContain("is up to date");
      expect(ok(runCli(["run", "--config", file, "--restart"])).stderr).not.toContain("is up to date");
    },
  },
  {
    options: ["run --dry-run", "run --limit", "run --sample"],
    check: () => {
      const { file, dir } = recipe();
      expect(ok(runCli(["run", "--config", file, "--dry-run", "--limit", "5"])).stdout).toMatch(
        /^rows: 5 \(the first 5 of 30\).*\n.*expected wall time/s,
      );
      expect(ok(runCli(["run", "--config", file, "--dry-run", "--limit", "5", "--sample"])).stdout).toMatch(
        /^rows: 30 \(a sample of 5, scaled to all rows\)/,
      );
      refused(runCli(["run", "--config", file, "--limit", "5"]), "--limit goes with --dry-run");
      refused(runCli(["run", "--config", file, "--sample"]), "--sample goes with --dry-run");
      refused(runCli(["run", "--config", file, "--dry-run", "--sample"]), "--sample needs --limit");
      expect(existsSync(dir)).toBe(false);
    },
  },
  {
    options: ["estimate --config", "estimate --set", "estimate --limit", "estimate --sample"],
    check: () => {
      const { file } = recipe();
      expect(ok(runCli(["estimate", "--config", file, "--set", "score.levels=1", "--limit", "4", "--sample"])).stdout).toMatch(
        /^rows: 30 \(a sample of 4, scaled to all rows\).*, 1 levels/s,
      );
      expect(ok(runCli(["estimate", "--config", file, "--limit", "4"])).stdout).toMatch(/^rows: 4 \(the first 4 of 30\).*, 2 levels/s);
      refused(runCli(["estimate", "--config", file, "--sample"]), "--sample needs --limit");
    },
  },
  {
    options: ["score --config", "score --set"],
    check: () => {
      const out = fresh("c") + ".arrow";
      const file = fresh("score") + ".yaml";
      writeFileSync(file, `data: {path: ${data}}\nmodel: {path: ${model}}\nscore: {levels: 1, out: ${out}}\n`);
      ok(runCli(["score", "--config", file, "--set", "score.interval=0.4"]));
      expect(metaOf(out).masking).toMatchObject({ levels: 1, interval: 0.4 });
    },
  },
  {
    options: [
      "score --data",
      "score --model",
      "score --out",
      "score --format",
      "score --template",
      "score --levels",
      "score --interval",
      "score --scope",
      "score --method",
      "score --seed",
      "score --batch-tokens",
      "score --max-tokens",
    ],
    check: async () => {
      // Rows with both alpaca and prompt/response fields (auto picks alpaca), one of them longer than 64 tokens.
      const both = writeJsonl(
        fresh("both") + ".jsonl",
        rows.slice(0, 4).map((r, i) => ({ ...r, prompt: r.instruction, response: i === 0 ? "long ".repeat(80) : r.output })),
      );
      const other = await tinyModel({ seed: 3 });
      const out = fresh("all") + ".arrow";
      ok(
        runCli([
          "score",
          "--data",
          both,
          "--model",
          other,
          "--out",
          out,
          "--format",
          "prompt_response",
          "--template",
          "none",
          "--levels",
          "3",
          "--interval",
          "0.5",
          "--scope",
          "global",
          "--method",
          "random",
          "--seed",
          "7",
          "--batch-tokens",
          "128",
          "--max-tokens",
          "64",
        ]),
      );
      const meta = metaOf(out);
      expect(meta.data).toMatchObject({ rows: 4, format: "prompt_response" });
      expect(meta.model.sha256).not.toEqual(metaOf(scores).model.sha256);
      expect(meta.tokens).toMatchObject({ template: "none", max_tokens: 64 });
      expect(meta.masking).toMatchObject({ levels: 3, interval: 0.5, scope: "global", method: "random", seed: 7 });
      expect(meta.batch_tokens).toBe(128);
      expect(statusesOf(out)[0]).toBe("truncated");
      expect([metaOf(scores).data.format, metaOf(scores).tokens.template, metaOf(scores).masking.scope]).toEqual([
        "alpaca",
        "alpaca",
        "layer",
      ]);
    },
  },
  {
    options: ["score --preset"],
    check: () => {
      const { out, r } = score(["--preset", "paper-image", "--levels", "2"]);
      ok(r);
      expect(metaOf(out).masking).toMatchObject({ levels: 2, interval: 0.02, scope: "global" }); // explicit --levels wins
    },
  },
  {
    options: ["score --threads", "score --device", "score --on-error"],
    check: () => {
      const bad = join(tmp, "bad.jsonl");
      writeFileSync(bad, readFileSync(data, "utf8") + "{not json\n");
      refused(score([], { on: bad }).r, `${bad}:31`);
      // --device cpu: no word about the CUDA provider (auto says why it fell back to the CPU).
      const { out, r } = score(["--threads", "1", "--device", "cpu", "--on-error", "skip"], { on: bad });
      expect(ok(r).stderr).toMatch(/device: cpu, 1 thread\n/);
      expect(statusesOf(out)[30]).toMatch(/^bad-row/);
      expect(ok(score([]).r).stderr).toMatch(/device: cpu, \d+ threads? \(onnxruntime's CUDA provider/);
      const cuda = score(["--device", "cuda"]).r; // no CUDA here: refused, never a silent CPU run
      if (cuda.status !== 0) expect(cuda.stderr).toMatch(/dlc-prune: error: score\.device cuda: onnxruntime's CUDA provider/);
    },
  },
  {
    options: ["score --shard", "score --shards", "merge --out"],
    check: () => {
      const base = fresh("sh") + ".arrow";
      ok(score(["--shard", "0/2"], { out: base }).r);
      ok(score(["--shards", "2"], { out: base, env: { JOB_COMPLETION_INDEX: "1" } }).r);
      const shards = [0, 1].map((i) => base.replace(/\.arrow$/, `.shard-${i}-of-2.arrow`));
      expect(shards.map((f) => metaOf(f).shard)).toEqual([
        { index: 0, count: 2 },
        { index: 1, count: 2 },
      ]);
      refused(score(["--shards", "2"]).r, "score.shards 2 is set but neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is");
      ok(runCli(["merge", "--out", base, ...shards]));
      expect(metaOf(base).shard).toBeNull();
    },
  },
  {
    options: ["score --restart"],
    check: () => {
      expect(ok(score(["--set", "data.fields.id=id"], { out: scores }).r).stderr).toContain("is up to date");
      expect(ok(score(["--set", "data.fields.id=id", "--restart"], { out: scores }).r).stderr).not.toContain("is up to date");
    },
  },
  {
    options: ["select --config", "select --set"],
    check: () => {
      const dir = fresh("selc");
      const file = `${dir}.yaml`;
      writeFileSync(file, `data: {path: ${data}}\nscore: {out: ${scores}}\nselect: {ratios: [0.2], out_dir: ${dir}}\n`);
      ok(runCli(["select", "--config", file, "--set", "select.strategy=easy"]));
      expect(existsSync(join(dir, "easy-0.2/train.parquet"))).toBe(true);
    },
  },
  {
    options: ["select --data", "select --scores"],
    check: () => {
      const other = writeJsonl(fresh("other") + ".jsonl", rows.slice(0, 5));
      refused(
        runCli(["select", "--data", other, "--scores", scores, "--ratio", "0.5", "--out-dir", fresh("sel")]),
        "scores of another data file",
      );
      refused(
        runCli(["select", "--data", data, "--scores", join(tmp, "missing.arrow"), "--ratio", "0.5", "--out-dir", fresh("sel")]),
        "missing.arrow",
      );
    },
  },
  {
    options: [
      "select --ratio",
      "select --out-dir",
      "select --strategies",
      "select --by",
      "select --split",
      "select --seed",
      "select --nested",
      "select --unscored",
    ],
    check: async () => {
      const kept = (dir: string, file: string) => keptIds(join(dir, file, "train.parquet"));
      const args = (seed: number, nested: boolean) => [
        "--ratio",
        "0.2,0.6",
        "--strategies",
        "flexrand,easy",
        "--by",
        "loss0",
        "--split",
        "0.3",
        "--seed",
        String(seed),
        nested ? "--nested" : "--no-nested",
        "--unscored",
        "keep",
      ];
      const [a, b, c] = [select(args(2, false)), select(args(3, false)), select(args(2, true))];
      for (const x of [a, b, c]) ok(x.r);
      expect(manifestOf(a.dir).outputs.map((o: { file: string }) => o.file)).toEqual(
        ["flexrand-by-loss0-0.2", "flexrand-by-loss0-0.6", "easy-by-loss0-0.2", "easy-by-loss0-0.6"].map((f) => `${f}/train.parquet`),
      );
      // 29 scored rows at 0.6 with split 0.3: the easy interval's 9 rows (round(8.7)) all, and round(29 x 0.3) = 9 hard.
      expect(manifestOf(a.dir).outputs[1].drawn).toEqual({ easy: 9, hard: 9 });
      expect(await kept(a.dir, "flexrand-by-loss0-0.6")).toContain("r29"); // the unscored row, kept
      expect(await kept(a.dir, "flexrand-by-loss0-0.6")).not.toEqual(await kept(b.dir, "flexrand-by-loss0-0.6")); // the seed
      const subset = async (dir: string) => {
        const large = await kept(dir, "flexrand-by-loss0-0.6");
        return (await kept(dir, "flexrand-by-loss0-0.2")).every((id) => large.includes(id));
      };
      expect([await subset(c.dir), await subset(a.dir)]).toEqual([true, false]);
    },
  },
  {
    options: ["select --strategy", "select --stratify"],
    check: async () => {
      const { dir, r } = select(["--strategy", "random", "--stratify", "source", "--ratio", "0.5"]);
      ok(r);
      const kept = await readParquetRows(join(dir, "random-0.5/train.parquet"));
      // round(29 x 0.5) = 14 rows shared out between 20 rows of a and 9 scored of b (Webster): 9.66 -> 10, 4.34 -> 4.
      expect(["a", "b"].map((s) => kept.filter((k) => k.source === s).length)).toEqual([10, 4]);
    },
  },
  {
    options: ["report --out-dir", "compare --out"],
    check: () => {
      const [a, b] = [select([]), select(["--seed", "1"])];
      ok(a.r);
      ok(b.r);
      ok(runCli(["report", "--out-dir", a.dir]));
      expect(existsSync(join(a.dir, "report.html"))).toBe(true);
      const out = fresh("cmp");
      ok(runCli(["compare", a.dir, b.dir, "--out", out]));
      expect(manifestOf(out).kind).toBe("compare");
    },
  },
  {
    options: [
      "model tiny --out",
      "model tiny --layers",
      "model tiny --hidden",
      "model tiny --heads",
      "model tiny --kv-heads",
      "model tiny --vocab",
      "model tiny --intermediate",
      "model tiny --max-positions",
      "model tiny --tie-embeddings",
      "model tiny --seed",
      "model tiny --external-data",
      "model tiny --dtype",
    ],
    check: () => {
      const shape = [
        "--layers",
        "1",
        "--hidden",
        "32",
        "--heads",
        "8",
        "--kv-heads",
        "4",
        "--vocab",
        "600",
        "--intermediate",
        "96",
        "--max-positions",
        "128",
        "--tie-embeddings",
        "--external-data",
        "--dtype",
        "fp16",
      ];
      const [a, b] = [fresh("tiny"), fresh("tiny")];
      ok(runCli(["model", "tiny", "--out", a, ...shape]));
      ok(runCli(["model", "tiny", "--out", b, ...shape, "--seed", "1"]));
      expect(JSON.parse(readFileSync(join(a, "config.json"), "utf8"))).toMatchObject({
        num_hidden_layers: 1,
        hidden_size: 32,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        vocab_size: 600,
        intermediate_size: 96,
        max_position_embeddings: 128,
        tie_word_embeddings: true,
        torch_dtype: "float16",
      });
      const weights = (d: string) => readFileSync(join(d, "onnx/model.onnx_data"));
      expect(weights(a).equals(weights(b))).toBe(false); // the seed
    },
  },
  {
    options: [
      "model import-llama2c --checkpoint",
      "model import-llama2c --tokenizer",
      "model import-llama2c --out",
      "model import-llama2c --external-data",
      "model import-llama2c --dtype",
    ],
    needsShared: true,
    check: () => {
      const out = fresh("l2c");
      ok(
        runCli([
          "model",
          "import-llama2c",
          "--checkpoint",
          STORIES_BIN,
          "--tokenizer",
          STORIES_TOK,
          "--out",
          out,
          "--external-data",
          "--dtype",
          "fp16",
        ]),
      );
      expect(existsSync(join(out, "onnx/model.onnx_data"))).toBe(true);
      expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).torch_dtype).toBe("float16");
      refused(runCli(["model", "import-llama2c", "--checkpoint", data, "--tokenizer", STORIES_TOK, "--out", fresh("l2c")]), "data.jsonl");
      refused(runCli(["model", "import-llama2c", "--checkpoint", STORIES_BIN, "--tokenizer", data, "--out", fresh("l2c")]), "data.jsonl");
    },
  },
  {
    options: ["model import-hf --checkpoint", "model import-hf --out", "model import-hf --external-data", "model import-hf --dtype"],
    check: () => {
      const ckpt = writeCheckpoint(fresh("ckpt"), model);
      const [plain, half] = [fresh("hf"), fresh("hf")];
      ok(runCli(["model", "import-hf", "--checkpoint", ckpt, "--out", plain]));
      ok(runCli(["model", "import-hf", "--checkpoint", ckpt, "--out", half, "--external-data", "--dtype", "fp16"]));
      expect(existsSync(join(plain, "onnx/model.onnx_data"))).toBe(false);
      expect(existsSync(join(half, "onnx/model.onnx_data"))).toBe(true);
      expect(JSON.parse(readFileSync(join(plain, "config.json"), "utf8")).torch_dtype).toBe("float32");
      expect(JSON.parse(readFileSync(join(half, "config.json"), "utf8")).torch_dtype).toBe("float16");
      refused(runCli(["model", "import-hf", "--checkpoint", fresh("missing"), "--out", fresh("hf")]), "config.json");
      refused(runCli(["model", "import-hf", "--checkpoint", ckpt, "--out", plain]), plain);
    },
  },
  {
    options: ["config keys --config", "config keys --set", "config show --config", "config show --set"],
    check: () => {
      const { file } = recipe();
      refused(runCli(["config", "keys", "--config", file]), "--config goes with config show");
      refused(runCli(["config", "keys", "--set", "score.levels=2"]), "--set goes with config show");
      const shown = ok(runCli(["config", "show", "--config", file, "--set", "score.levels=7"])).stdout;
      expect(shown).toContain(`path: ${data}`);
      expect(shown).toContain("levels: 7");
    },
  },
];

describe("every option of every command does something or is refused", () => {
  it("each option --help lists has a check here, and each check an option", () => {
    const listed = COMMANDS.flatMap((c) => listedOptions(c).map((o) => `${c} ${o}`)).sort();
    expect(CHECKS.flatMap((c) => c.options).sort()).toEqual(listed);
  });

  for (const { options, check, needsShared } of CHECKS)
    if (needsShared && !hasShared) it.skip(`${options.join(", ")} [${SKIP_REASON}]`, check);
    else it(options.join(", "), check, 120_000);
});
