// The Slurm and Kubernetes examples: shell syntax, directives and manifests, and the Slurm scripts run for
// real (with `npx` pointed at this build and CPU scoring) as a 2-task array followed by the merge job.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import picomatch from "picomatch";
import YAML from "yaml";
import { describe, expect, it } from "vitest";
import { resolveShard } from "../../src/run/shard.js";
import { shardPath } from "../../src/contract/names.js";
import { CLI } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

const EXAMPLES = fileURLToPath(new URL("../../examples/", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const slurm = (f: string) => join(EXAMPLES, "slurm", f);
const directives = (f: string) =>
  readFileSync(f, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("#SBATCH"));

describe("Slurm examples", () => {
  it("are valid bash with well-formed #SBATCH directives", () => {
    for (const f of ["score-array.sbatch", "merge-select.sbatch", "submit.sh"]) {
      const r = spawnSync("bash", ["-n", slurm(f)], { encoding: "utf8" });
      expect(r.status, `${f}: ${r.stderr}`).toBe(0);
    }
    for (const f of ["score-array.sbatch", "merge-select.sbatch"])
      for (const d of directives(slurm(f))) expect(d, f).toMatch(/^#SBATCH --[a-z-]+(=\S+)?$/);
    expect(directives(slurm("score-array.sbatch"))).toEqual(expect.arrayContaining(["#SBATCH --array=0-7", "#SBATCH --gres=gpu:1"]));
    expect(directives(slurm("merge-select.sbatch")).some((d) => d.includes("gres"))).toBe(false);
    const submit = readFileSync(slurm("submit.sh"), "utf8");
    expect(submit).toContain('--dependency="afterok:${array_job}"');
    expect(submit).toContain("--parsable");
  });

  it("run as a 2-task array and a merge + select job, they produce the outputs", () => {
    const project = tempDir();
    const bin = join(project, "bin");
    mkdirSync(bin);
    // `npx dlc-prune ...` -> this build (no registry lookup).
    writeFileSync(join(bin, "npx"), `#!/bin/bash\n[ "$1" = dlc-prune ] || exit 3\nshift\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, "npx"), 0o755);
    mkdirSync(join(project, "datasets"));
    copyFileSync(join(ROOT, "datasets/demo.jsonl"), join(project, "datasets/demo.jsonl"));
    writeFileSync(
      join(project, "job.yaml"),
      "data: { path: datasets/demo.jsonl, fields: { id: id, group: category } }\nmodel: { path: model, tiny: {} }\nscore: { out: out/scores.arrow }\nselect: { ratios: [0.3], out_dir: out }\n",
    );
    const env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      DLC_PRUNE_DIR: project,
      CONFIG: "job.yaml",
      DEVICE: "cpu",
      SLURM_ARRAY_TASK_COUNT: "2",
    };
    // The first task builds the tiny model; the second then finds it.
    for (const task of ["0", "1"]) {
      const r = spawnSync("bash", [slurm("score-array.sbatch")], {
        env: { ...env, SLURM_ARRAY_TASK_ID: task, SLURM_CPUS_PER_TASK: "1" },
        encoding: "utf8",
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`shard ${task}/2`);
    }
    expect(readdirSync(join(project, "out")).sort()).toEqual(["scores.shard-0-of-2.arrow", "scores.shard-1-of-2.arrow"]);
    const merge = spawnSync("bash", [slurm("merge-select.sbatch")], {
      env: { ...env, SHARDS: "out/scores.shard-*.arrow" },
      encoding: "utf8",
    });
    expect(merge.status, merge.stderr).toBe(0);
    expect(readdirSync(join(project, "out"))).toEqual(
      expect.arrayContaining(["scores.arrow", "flexrand-0.3", "manifest.json", "report.html"]),
    );
  });
});

describe("Kubernetes examples", () => {
  const k8s = (f: string) => YAML.parse(readFileSync(join(EXAMPLES, "kubernetes", f), "utf8"));
  const optionValue = (command: string[], key: string) =>
    command.map((a) => new RegExp(`^${key}=(.*)$`).exec(a)?.[1]).find((v) => v !== undefined);

  it("the scoring Job is Indexed, one GPU per index, score.shards = completions, on a shared volume", () => {
    const job = k8s("score-indexed-job.yaml");
    expect([job.apiVersion, job.kind, job.spec.completionMode]).toEqual(["batch/v1", "Job", "Indexed"]);
    expect(job.spec.parallelism).toBe(job.spec.completions);
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).toBe("Never");
    const c = pod.containers[0];
    expect(c.resources.limits["nvidia.com/gpu"]).toBe(1);
    expect(c.command.slice(0, 3)).toEqual(["npx", "dlc-prune", "score"]);
    const shards = Number(optionValue(c.command, "score.shards"));
    expect(shards).toBe(job.spec.completions);
    expect(resolveShard(null, shards, { JOB_COMPLETION_INDEX: String(shards - 1) })).toEqual({ index: shards - 1, count: shards });
    expect(pod.volumes.map((v: { name: string }) => v.name)).toEqual(
      expect.arrayContaining(c.volumeMounts.map((m: { name: string }) => m.name)),
    );
  });

  it("the merge Job's glob matches the shard files the scoring Job writes", () => {
    const job = k8s("merge-select-job.yaml");
    const c = job.spec.template.spec.containers[0];
    expect(c.command.slice(0, 3)).toEqual(["npx", "dlc-prune", "run"]);
    expect(c.resources.limits?.["nvidia.com/gpu"]).toBeUndefined();
    const globs = YAML.parse(optionValue(c.command, "score.merge")!) as string[];
    const isMatch = picomatch(globs[0]!);
    const completions = k8s("score-indexed-job.yaml").spec.completions;
    for (let i = 0; i < completions; i++)
      expect(isMatch(shardPath("/data/out/alpaca/scores.arrow", { index: i, count: completions }))).toBe(true);
    expect(spawnSync("bash", ["-n", join(EXAMPLES, "kubernetes/run.sh")]).status).toBe(0);
  });
});
