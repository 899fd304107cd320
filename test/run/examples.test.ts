// The Slurm and Kubernetes examples without a cluster: shell syntax, directives and manifests; the Slurm scripts
// run by hand as a 2-task array and the merge job (CPU scoring), submit.sh and run.sh against stand-ins for
// sbatch and kubectl that record their arguments. test/run/slurm.test.ts runs them on a real Slurm.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import picomatch from "picomatch";
import YAML from "yaml";
import { describe, expect, it } from "vitest";
import { resolveShard } from "../../src/run/shard.js";
import { schedulerTask } from "../../src/util/lock.js";
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

/** A stand-in for `name` on PATH (in `dir`) that appends its arguments, one per line then "--", to `log`, then runs `then`. */
function standIn(dir: string, name: string, log: string, then: string): void {
  writeFileSync(join(dir, name), `#!/bin/bash\nprintf '%s\\n' "$@" -- >> "${log}"\n${then}\n`);
  chmodSync(join(dir, name), 0o755);
}

/** The calls `log` recorded: each call's arguments. */
const calls = (log: string) =>
  readFileSync(log, "utf8")
    .split("--\n")
    .filter(Boolean)
    .map((c) => c.trimEnd().split("\n"));

describe("Slurm examples", () => {
  it("are valid bash with well-formed #SBATCH directives that ask for no resource a CPU-only node may lack", () => {
    for (const f of ["score-array.sbatch", "merge-select.sbatch", "submit.sh"]) {
      const r = spawnSync("bash", ["-n", slurm(f)], { encoding: "utf8" });
      expect(r.status, `${f}: ${r.stderr}`).toBe(0);
    }
    for (const f of ["score-array.sbatch", "merge-select.sbatch"]) {
      for (const d of directives(slurm(f))) expect(d, f).toMatch(/^#SBATCH --[a-z-]+(=\S+)?$/);
      // Resources come from submit.sh's SCORE_OPTS / MERGE_OPTS or sbatch: a GPU or 64G would leave jobs pending.
      expect(
        directives(slurm(f)).filter((d) => /--(gres|gpus|cpus-per-task|mem|time|partition)/.test(d)),
        f,
      ).toEqual([]);
      expect(directives(slurm(f)), f).toContain("#SBATCH --open-mode=append"); // a requeue keeps the first attempt's log
      // node itself: Slurm signals what it started (it skips `npm exec`, whose name has a space).
      const commands = readFileSync(slurm(f), "utf8")
        .split("\n")
        .filter((l) => /\bdlc-prune\b|\$bin/.test(l) && !l.startsWith("#"));
      expect(
        commands.filter((l) => /\bnpx\b|npm (exec|run|start)/.test(l)),
        f,
      ).toEqual([]);
      expect(
        commands.some((l) => l.startsWith('exec node "$bin" ')),
        f,
      ).toBe(true);
    }
    expect(directives(slurm("score-array.sbatch"))).toContain("#SBATCH --requeue");
    expect(readFileSync(slurm("score-array.sbatch"), "utf8")).toContain('--shard "${SLURM_ARRAY_TASK_ID}/${SHARDS_N}"');
  });

  it("run as a 2-task array and a merge + select job, they produce the outputs; a task needs SHARDS_N and takes the recipe's device unless DEVICE is set", () => {
    const project = tempDir();
    mkdirSync(join(project, "datasets"));
    copyFileSync(join(ROOT, "datasets/demo.jsonl"), join(project, "datasets/demo.jsonl"));
    writeFileSync(
      join(project, "job.yaml"),
      "data: { path: datasets/demo.jsonl, fields: { id: id, group: category } }\nmodel: { path: model, tiny: {} }\nscore: { out: out/scores.arrow, device: cuda }\nselect: { ratios: [0.3], out_dir: out }\n",
    );
    const env = { ...process.env, DLC_PRUNE_DIR: project, DLC_PRUNE_BIN: CLI, CONFIG: "job.yaml" };
    const task = (id: string, extra: Record<string, string> = {}) =>
      spawnSync("bash", [slurm("score-array.sbatch")], { env: { ...env, SLURM_ARRAY_TASK_ID: id, ...extra }, encoding: "utf8" });
    const unset = task("0");
    expect(unset.status).not.toBe(0);
    expect(unset.stderr).toContain("set SHARDS_N to the number of shards of the whole array");
    // The recipe's score.device (cuda, not installed here) unless DEVICE overrides it.
    const recipe = task("0", { SHARDS_N: "2" });
    expect(recipe.status).toBe(1);
    expect(recipe.stderr).toContain("score.device cuda: onnxruntime's CUDA provider is not installed");
    // The first task builds the tiny model; the second then finds it.
    for (const id of ["0", "1"]) {
      const r = task(id, { SHARDS_N: "2", SLURM_CPUS_PER_TASK: "1", DEVICE: "cpu" });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`shard ${id}/2`);
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

  it("find the CLI in the project without DLC_PRUNE_BIN: node_modules/.bin/dlc-prune, else dist/cli/main.js", () => {
    for (const bin of ["node_modules/.bin/dlc-prune", "dist/cli/main.js"]) {
      const project = tempDir();
      mkdirSync(join(project, bin, ".."), { recursive: true });
      writeFileSync(join(project, bin), 'console.error("ran", process.argv.slice(1).join(" "));\n');
      const r = spawnSync("bash", [slurm("score-array.sbatch")], {
        env: { ...process.env, DLC_PRUNE_DIR: project, SHARDS_N: "3", SLURM_ARRAY_TASK_ID: "2" },
        encoding: "utf8",
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr.trim()).toBe(`ran ${join(project, bin)} score --config configs/alpaca.yaml --shard 2/3 --threads 1`);
    }
  });

  it("submit.sh passes its arguments to both jobs, SCORE_OPTS and MERGE_OPTS to one each, and cancels the merge on a failed task", () => {
    const dir = tempDir();
    const log = join(dir, "sbatch.log");
    // sbatch --parsable prints JOBID;CLUSTER on a federation; the scripts see SHARDS_N.
    standIn(dir, "sbatch", log, `echo "SHARDS_N=$SHARDS_N" >> "${log}.env"; echo "$((1000 + $(grep -c -- '^--$' "${log}")));hpc"`);
    const r = spawnSync("bash", [slurm("submit.sh"), "--partition=debug", "--account=lab"], {
      env: {
        ...process.env,
        PATH: `${dir}:${process.env.PATH}`,
        SHARDS_N: "3",
        SCORE_OPTS: "--gres=gpu:1 --mem=64G",
        MERGE_OPTS: "--mem=8G",
      },
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    const [score, merge] = calls(log);
    expect(score).toEqual([
      "--parsable",
      "--array=0-2",
      "--gres=gpu:1",
      "--mem=64G",
      "--partition=debug",
      "--account=lab",
      slurm("score-array.sbatch"),
    ]);
    expect(merge).toEqual([
      "--parsable",
      "--dependency=afterok:1001",
      "--kill-on-invalid-dep=yes",
      "--mem=8G",
      "--partition=debug",
      "--account=lab",
      slurm("merge-select.sbatch"),
    ]);
    expect(readFileSync(`${log}.env`, "utf8")).toBe("SHARDS_N=3\nSHARDS_N=3\n");
    expect(r.stdout).toContain("job array 1001 (3 shards); merge + select: job 1002");
  });
});

describe("Kubernetes examples", () => {
  const k8s = (f: string) => YAML.parse(readFileSync(join(EXAMPLES, "kubernetes", f), "utf8"));
  const optionValue = (command: string[], key: string) =>
    command.map((a) => new RegExp(`^${key}=(.*)$`).exec(a)?.[1]).find((v) => v !== undefined);
  const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;

  it("the scoring Job is Indexed, one GPU per index, score.shards = completions, threads = CPUs requested, on a shared volume", () => {
    const job = k8s("score-indexed-job.yaml");
    expect([job.apiVersion, job.kind, job.spec.completionMode]).toEqual(["batch/v1", "Job", "Indexed"]);
    expect(job.spec.parallelism).toBe(job.spec.completions);
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).toBe("Never");
    const c = pod.containers[0];
    expect(c.image).toBe(`registry.example.com/dlc-prune:${version}`);
    expect(c.resources.limits["nvidia.com/gpu"]).toBe(1);
    expect(c.command.slice(0, 3)).toEqual(["node", "dist/cli/main.js", "score"]); // SIGTERM reaches dlc-prune
    expect(c.command[c.command.indexOf("--threads") + 1]).toBe(c.resources.requests.cpu);
    const shards = Number(optionValue(c.command, "score.shards"));
    expect(shards).toBe(job.spec.completions);
    expect(resolveShard(null, shards, { JOB_COMPLETION_INDEX: String(shards - 1) })).toEqual({ index: shards - 1, count: shards });
    expect(pod.volumes.map((v: { name: string }) => v.name)).toEqual(
      expect.arrayContaining(c.volumeMounts.map((m: { name: string }) => m.name)),
    );
  });

  it("the scoring Job's retries: evictions ignored, one pod per index, its task named in the lock", () => {
    const job = k8s("score-indexed-job.yaml");
    const rules = job.spec.podFailurePolicy.rules;
    expect(rules).toEqual([{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget" }] }]);
    const c = job.spec.template.spec.containers[0];
    expect(job.spec.podReplacementPolicy).toBe("Failed");
    // The Job's uid, not its name: a later Job of the same name is another run, whose pods never take these locks.
    const uid = c.env.find((e: { name: string }) => e.name === "JOB_UID");
    expect(uid.valueFrom.fieldRef.fieldPath).toBe("metadata.labels['batch.kubernetes.io/controller-uid']");
    expect(schedulerTask({ JOB_UID: "6f1c", JOB_COMPLETION_INDEX: "3" })).toBe("kubernetes job 6f1c index 3");
  });

  it("the merge Job's glob matches the shard files the scoring Job writes", () => {
    const job = k8s("merge-select-job.yaml");
    const c = job.spec.template.spec.containers[0];
    expect(c.image).toBe(`registry.example.com/dlc-prune:${version}`);
    expect(c.command.slice(0, 3)).toEqual(["node", "dist/cli/main.js", "run"]);
    expect(c.resources.limits?.["nvidia.com/gpu"]).toBeUndefined();
    const globs = YAML.parse(optionValue(c.command, "score.merge")!) as string[];
    const isMatch = picomatch(globs[0]!);
    const completions = k8s("score-indexed-job.yaml").spec.completions;
    for (let i = 0; i < completions; i++)
      expect(isMatch(shardPath("/data/out/alpaca/scores.arrow", { index: i, count: completions }))).toBe(true);
  });

  it("run.sh deletes an earlier run's Jobs, stops when the scoring Job fails, and merges once it completes", () => {
    expect(spawnSync("bash", ["-n", join(EXAMPLES, "kubernetes/run.sh")]).status).toBe(0);
    for (const outcome of ["Failed", "Complete"]) {
      const dir = tempDir();
      const log = join(dir, "kubectl.log");
      // Complete or Failed at the second look (after one poll).
      standIn(dir, "kubectl", log, `[ "$1" = get ] && [ "$(grep -c '^get$' "${log}")" -ge 2 ] && printf '${outcome}'; exit 0`);
      const r = spawnSync("bash", [join(EXAMPLES, "kubernetes/run.sh")], {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, POLL_SECONDS: "0" },
        encoding: "utf8",
        timeout: 30_000,
      });
      const verbs = calls(log).map((c) => `${c[0]} ${c[0] === "apply" ? c[2]!.split("/").pop() : c[1]}`);
      if (outcome === "Failed") {
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("job dlc-prune-score failed");
        expect(verbs).toEqual(["delete job", "apply score-indexed-job.yaml", "get job/dlc-prune-score", "get job/dlc-prune-score"]);
      } else {
        expect(r.status, r.stderr).toBe(0);
        expect(verbs.filter((v) => !v.startsWith("get"))).toEqual([
          "delete job",
          "apply score-indexed-job.yaml",
          "apply merge-select-job.yaml",
        ]);
      }
    }
  });
});
