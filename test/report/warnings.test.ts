// The warnings at the top of the report, from a run whose rows are mostly truncated and partly unscored: each
// count recomputed from the scores file.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readScoresFile } from "../../src/contract/file.js";
import type { Report } from "../../src/report/types.js";
import { runCli } from "../helpers/cli.js";
import { tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-warnings-");
let model: string;

beforeAll(async () => {
  model = await tinyModel();
}, 120_000);

describe("the report's warnings", () => {
  it("say how many rows were truncated and how many have no score, and why", async () => {
    // 40 rows: every 4th response is long (truncated at 48 tokens), every 10th empty (unscored).
    const rows = Array.from({ length: 40 }, (_, i) => ({
      id: `r${i}`,
      prompt: `Tell me about the harbour, number ${i}.`,
      response:
        i % 10 === 7 ? "" : i % 4 === 0 ? "The boats came in with the rain and left with the sun. ".repeat(8) : `It is quiet, ${i}.`,
    }));
    const data = writeJsonl(join(tmp, "rows.jsonl"), rows);
    const out = join(tmp, "out");
    const cfg = join(tmp, "job.yaml");
    writeFileSync(
      cfg,
      `data: { path: ${data}, fields: { id: id } }\nmodel: { path: ${model} }\nscore: { out: ${join(out, "scores.arrow")}, max_tokens: 48 }\nselect: { out_dir: ${out} }\n`,
    );
    const r = runCli(["run", "--config", cfg]);
    expect(r.status, r.stderr).toBe(0);
    const { cols } = await readScoresFile(join(out, "scores.arrow"));
    const truncated = cols.status.filter((s) => s === "truncated").length;
    const scored = truncated + cols.status.filter((s) => s === "ok").length;
    expect(truncated).toBe(10);
    expect(scored).toBe(36);
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as Report;
    expect(report.warnings.slice(0, 2)).toEqual([
      "10 of 36 scored rows (28%) were truncated: only the response tokens within score.max_tokens were scored; raise score.max_tokens if the model's window allows",
      "4 of 40 rows (10%) have no score (4 empty-response): they are listed in unscored.jsonl",
    ]);
    const html = readFileSync(join(out, "report.html"), "utf8");
    // Before the first figure.
    expect(html.indexOf("10 of 36 scored rows (28%) were truncated")).toBeLessThan(html.indexOf("<h2>"));
  });
});
