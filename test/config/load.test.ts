// Recipes and overrides: a wrong value names the key, what it expects, the value given and where it came
// from; paths in a recipe are relative to the recipe.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();

function error(args: string[]): string {
  const r = runCli(["config", "show", "--set", "data.path=x.jsonl", ...args], { cwd: tmp });
  expect(r.status, r.stdout).toBe(1);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe("config errors", () => {
  it("name the key, the expected type, the value given and its source", () => {
    expect(error(["--set", "select.ratios=0.2"])).toBe(
      "dlc-prune: error: command line: key select.ratios: expected a list, e.g. [0.1, 0.3], got 0.2 (from --set select.ratios=0.2)",
    );
    expect(error(["--set", "score.levels=abc"])).toBe(
      'dlc-prune: error: command line: key score.levels: expected a number, got "abc" (from --set score.levels=abc)',
    );
    expect(error(["--set", "score.levels=2.5"])).toContain("key score.levels: expected a whole number, got 2.5");
    expect(error(["--set", "select.strategy=best"])).toContain(
      'key select.strategy: expected one of flexrand, random, easy, hard, got "best" (from --set select.strategy=best)',
    );
    expect(error(["--set", "select.ratios=[0.2,1.5]"])).toContain("key select.ratios[1]: a keep ratio must be in (0, 1], got 1.5");
    expect(error(["--set", "score.levles=3"])).toContain("unknown key score.levles (from --set score.levles=3)");
    writeFileSync(join(tmp, "bad.yaml"), "data: {path: x.jsonl}\nselect: {ratios: 0.3}\n");
    const r = runCli(["config", "show", "--config", "bad.yaml"], { cwd: tmp });
    expect(r.stderr.trim()).toBe("dlc-prune: error: bad.yaml: key select.ratios: expected a list, e.g. [0.1, 0.3], got 0.3 (in bad.yaml)");
  });

  it("an unknown key suggests the nearest one; a far-off name suggests nothing", () => {
    expect(error(["--set", "select.ratio=[0.3]"])).toBe(
      "dlc-prune: error: command line: unknown key select.ratio (from --set select.ratio=[0.3]); did you mean select.ratios?",
    );
    expect(error(["--set", "score.levles=3"])).toMatch(/; did you mean score\.levels\?$/);
    writeFileSync(join(tmp, "typo.yaml"), "data: {path: x.jsonl}\nscore: {batchtokens: 4096}\n");
    expect(runCli(["config", "show", "--config", "typo.yaml"], { cwd: tmp }).stderr.trim()).toBe(
      "dlc-prune: error: typo.yaml: unknown key score.batchtokens (in typo.yaml); did you mean score.batch_tokens?",
    );
    expect(error(["--set", "select.completely_else=1"])).not.toContain("did you mean");
  });

  it("__proto__, constructor and prototype are refused as keys, in --set and in a recipe, naming the key", () => {
    expect(error(["--set", "__proto__={score: {levels: 9}}"])).toBe(
      "dlc-prune: error: key __proto__: __proto__ cannot be a config key (see dlc-prune config keys)",
    );
    expect(error(["--set", "score.constructor=1"])).toContain("key score.constructor: constructor cannot be a config key");
    writeFileSync(join(tmp, "proto.yaml"), "data: {path: x.jsonl}\nscore:\n  levels: 2\n  __proto__: {levels: 9}\n");
    expect(runCli(["config", "show", "--config", "proto.yaml"], { cwd: tmp }).stderr.trim()).toBe(
      "dlc-prune: error: proto.yaml: key score.__proto__: __proto__ cannot be a config key (see dlc-prune config keys)",
    );
    writeFileSync(join(tmp, "proto2.yaml"), "select:\n  strategies: [{strategy: hard, prototype: 1}]\n");
    expect(runCli(["config", "show", "--config", "proto2.yaml"], { cwd: tmp }).stderr).toContain(
      "key select.strategies[0].prototype: prototype cannot be a config key",
    );
  });

  it("a list flag takes commas as well as repeats; a flag's bad value names the flag", () => {
    const select = (ratio: string[]) =>
      runCli(["select", "--data", "none.jsonl", "--scores", "none.arrow", "--out-dir", "o", ...ratio.flatMap((r) => ["--ratio", r])], {
        cwd: tmp,
      });
    // Valid ratios get past the config to the missing files; a bad one is named as the flag's.
    expect(select(["0.1,0.2"]).stderr).not.toContain("select.ratios");
    expect(select(["0.1,0.2", "0.3"]).stderr).not.toContain("select.ratios");
    expect(select(["0.1,2"]).stderr.trim()).toBe(
      "dlc-prune: error: command line: key select.ratios[1]: a keep ratio must be in (0, 1], got 2 (from --ratio)",
    );
  });
});

describe("recipe paths", () => {
  it("are relative to the recipe; overrides are relative to the working directory", async () => {
    mkdirSync(join(tmp, "configs"), { recursive: true });
    const file = join(tmp, "configs/r.yaml");
    writeFileSync(
      file,
      "data: {path: ../data/train.jsonl}\nmodel: {path: /models/m}\nscore: {out: ../out/s.arrow, merge: ['../out/s.shard-*.arrow']}\nselect: {out_dir: ../out}\n",
    );
    const config = await loadConfig({ file, overrides: [["select.ratios", [0.2]]] });
    const fromCwd = (p: string) => relative(process.cwd(), join(tmp, p));
    expect([config.data.path, config.model.path, config.score.out, config.score.merge, config.select.out_dir]).toEqual([
      fromCwd("data/train.jsonl"),
      "/models/m",
      fromCwd("out/s.arrow"),
      [fromCwd("out/s.shard-*.arrow")],
      fromCwd("out"),
    ]);
    const overridden = await loadConfig({ file, overrides: [["data.path", "here.jsonl", "--set data.path=here.jsonl"]] });
    expect(overridden.data.path).toBe("here.jsonl");
  });

  it("configs/alpaca.yaml leaves the window to the model", async () => {
    const config = await loadConfig({ file: new URL("../../configs/alpaca.yaml", import.meta.url).pathname });
    expect(config.score.max_tokens).toBeNull();
  });
});
