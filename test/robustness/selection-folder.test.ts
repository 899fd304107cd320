// A scores file inside a selection's folder (issue 20, point 11): `<selection>-<ratio>/` holds the kept rows
// alone and is replaced or removed with them, so score.out pointing there is refused before any work, and a
// folder that holds such a file is refused saying what it is and what to do.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import YAML from "yaml";
import { runCli, type CliResult } from "../helpers/cli.js";
import { alpacaRows, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-selection-folder-");
let model: string;

function oneLineError(r: CliResult): string {
  expect(r.status, r.stdout + r.stderr).toBe(1);
  const lines = r.stderr
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("dlc-prune: error: "));
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
  return lines[0]!;
}

function caseDir(name: string, scoresOut: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeJsonl(join(dir, "d.jsonl"), alpacaRows(8));
  const doc = {
    data: { path: "d.jsonl" },
    model: { path: model },
    score: { out: scoresOut, levels: 1 },
    select: { ratios: [0.5], out_dir: "out" },
  };
  writeFileSync(join(dir, "r.yaml"), YAML.stringify(doc));
  return dir;
}

beforeAll(async () => {
  model = await tinyModel();
});

it("score.out inside a selection folder of select.out_dir: refused before scoring, saying where to put it", () => {
  const dir = caseDir("inside", "out/flexrand-0.5/scores.arrow");
  const line = oneLineError(runCli(["run", "--config", "r.yaml"], { cwd: dir }));
  expect(line).toBe(
    "dlc-prune: error: score.out out/flexrand-0.5/scores.arrow: inside out/flexrand-0.5, a selection folder of select.out_dir, which holds only the kept rows of that selection and is replaced or removed with them; set score.out outside the selection folders (e.g. out/scores.arrow)",
  );
  expect(existsSync(join(dir, "out/flexrand-0.5/scores.arrow"))).toBe(false);
  // Another selection's folder, or one of another strategy: the same.
  expect(oneLineError(runCli(["run", "--config", "r.yaml", "--set", "score.out=out/hard-by-ifd-0.1/s.arrow"], { cwd: dir }))).toContain(
    "score.out out/hard-by-ifd-0.1/s.arrow: inside out/hard-by-ifd-0.1, a selection folder",
  );
  expect(oneLineError(runCli(["select", "--config", "r.yaml"], { cwd: dir }))).toContain("a selection folder of select.out_dir");
  // Beside the selection folders it is fine.
  const ok = runCli(["run", "--config", "r.yaml", "--set", "score.out=out/scores.arrow"], { cwd: dir });
  expect(ok.status, ok.stderr).toBe(0);
});

it("a folder holding a scores file in a selection folder: the refusal says it is one and what to do", () => {
  const dir = caseDir("holds", "scores.arrow");
  mkdirSync(join(dir, "out/flexrand-0.5"), { recursive: true });
  writeFileSync(join(dir, "out/flexrand-0.5/scores.arrow"), "an earlier run's scores");
  const line = oneLineError(runCli(["run", "--config", "r.yaml"], { cwd: dir }));
  expect(line).toContain("select.out_dir out: holds files dlc-prune did not write (flexrand-0.5/scores.arrow)");
  expect(line).toContain(
    "flexrand-0.5/scores.arrow looks like a scores file: score.out must not point inside a selection folder (flexrand-0.5/ holds only the kept rows); move it out of out/flexrand-0.5 and set score.out to a path outside the selection folders (e.g. out/scores.arrow)",
  );
  expect(readFileSync(join(dir, "out/flexrand-0.5/scores.arrow"), "utf8")).toBe("an earlier run's scores");
});
