// The package as a library: a Node pipeline imports "dlc-prune" and runs the stages in-process.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import * as api from "dlc-prune";
import { tempDir } from "../helpers/tmp.js";

it("exports a typed API through package.json exports: loadConfig, score, select, report, run", async () => {
  const dir = tempDir();
  const data = join(dir, "rows.jsonl");
  writeFileSync(
    data,
    ["Name a color.", "Add 2 and 3.", "Say hello.", "Count to three."]
      .map((q, i) => JSON.stringify({ prompt: q, response: `Answer ${i}: blue, five, hello, one two three.` }))
      .join("\n") + "\n",
  );
  const config = await api.loadConfig({
    overrides: [
      ["data.path", data],
      ["model.path", join(dir, "model")],
      ["model.tiny", {}],
      ["score.out", join(dir, "scores.arrow")],
      ["select.ratios", [0.5]],
      ["select.out_dir", join(dir, "out")],
    ],
  });
  const logs: string[] = [];
  const result = await api.run(config, { log: (l) => logs.push(l) });
  if (result.kind !== "selected") throw new Error("not sharded: run selects");
  expect(result.manifest.outputs[0]!.rows.kept).toBe(2);
  expect("scored" in result.score && result.score.scored).toBe(4);
  expect(logs.some((l) => l.includes("meaningless"))).toBe(true);
  // The stages one by one give the same files.
  const again = { ...config, select: { ...config.select, out_dir: join(dir, "again") } };
  await api.select(again);
  await api.report(join(dir, "again"));
  for (const f of ["flexrand-0.5/train.parquet", "unscored.jsonl", "report.json", "report.html"])
    expect(readFileSync(join(dir, "again", f)).equals(readFileSync(join(dir, "out", f))), f).toBe(true);
  expect(api.configSchema.safeParse({ data: { path: "x" }, bogus: 1 }).success).toBe(false);
  expect(api.flexrandCounts(100, 0.3, 0.5)).toEqual({ easySize: 50, easy: 15, hard: 15 });
});
