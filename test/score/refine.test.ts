// score.refine: boundary against score.refine: none on stories260K and real rows of ../shared: the same
// FlexRand intervals and kept rows for fewer model tokens; confidence 1 reproduces none exactly; resume and
// shards repeat their decisions; a selection it was not refined for is refused.
import { readFileSync } from "node:fs";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { selectAndWrite } from "../../src/run/select.js";
import { scoreOnly, type ScoreProgress } from "../../src/run/score.js";
import { readScoresFile, type ScoresFile } from "../../src/contract/file.js";
import { mergeShards } from "../../src/contract/merge.js";
import { cutValues, cutRank, expectedAgreement, type Cut } from "../../src/contract/cuts.js";
import { cutsOf } from "../../src/select/cuts.js";
import { selectRows } from "../../src/select/select.js";
import { Interrupted } from "../../src/util/errors.js";
import { normalCdf, normalQuantile } from "../../src/util/math.js";
import { quiet, testConfig } from "../helpers/config.js";
import { storiesModel, writeJsonl } from "../helpers/fixtures.js";
import { DATASETS_DIR, describeWithShared } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();

/** A kept Parquet file's rows. */
async function keptRows(path: string): Promise<Record<string, unknown>[]> {
  return parquetReadObjects({ file: await asyncBufferFromFile(path) });
}

describe("the boundaries and the normal distribution", () => {
  it("are the cuts each DLC-ranked selection needs, at their positions", () => {
    const select = testConfig({
      "data.path": "x",
      "select.strategies": ["flexrand", "random", "hard", { strategy: "easy", by: "ifd" }],
      "select.ratios": [0.1, 0.5, 1],
      "select.split": 0.25,
    }).select;
    expect(cutsOf(select)).toEqual([
      { strategy: "flexrand", at: 0.25 },
      { strategy: "hard", at: 0.1 },
      { strategy: "hard", at: 0.5 },
    ]);
    // 10 rows: FlexRand's easy interval is round(10 x 0.25) = 2 rows (Python's round: halves to even), hard 0.1 keeps the last 1.
    expect([
      cutRank({ strategy: "flexrand", at: 0.25 }, 10),
      cutRank({ strategy: "hard", at: 0.1 }, 10),
      cutRank({ strategy: "easy", at: 0.25 }, 10),
    ]).toEqual([2, 9, 2]);
    expect(cutValues([5, 1, 4, 2, 3], [{ strategy: "flexrand", at: 0.5 }])).toEqual([2.5]); // rows 1, 2 | 3, 4, 5
    // Two estimated rows 1 sd from the boundary (2.5) each: 2 x (1 - Φ(1)) expected misplaced of 5.
    expect(
      expectedAgreement(Float64Array.from([1, 2, 3, 4, 5]), Float64Array.from([NaN, 0.5, 0.5, NaN, NaN]), [
        { strategy: "flexrand", at: 0.5 },
      ]),
    ).toBeCloseTo(1 - (2 * (1 - normalCdf(1))) / 5, 12);
  });

  it("Φ and Φ⁻¹ match tabulated values", () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959963985)).toBeCloseTo(0.975, 7);
    expect(normalCdf(-3)).toBeCloseTo(0.0013498980316301, 8);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963985, 7);
    expect(normalQuantile(0.9999)).toBeCloseTo(3.719016485, 7);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306, 7);
    expect(normalQuantile(1)).toBe(Infinity);
  });
});

/** Scored rows before the boundary in ascending DLC (ties by row). */
function before(s: ScoresFile, cut: Cut): Set<number> {
  const { dlc } = s.cols;
  const rows = [...dlc.keys()].filter((r) => !Number.isNaN(dlc[r]!)).sort((a, b) => dlc[a]! - dlc[b]! || a - b);
  return new Set(rows.slice(0, cutRank(cut, rows.length)));
}

describeWithShared("score.refine: boundary on stories260K", () => {
  let model: string;
  let data: string;
  let none: ScoresFile;
  let noneTokens: number;
  const cfg = (keys: Record<string, unknown>) =>
    testConfig({
      "data.path": data,
      "model.path": model,
      template: "alpaca",
      "score.max_tokens": 256,
      "select.ratios": [0.1, 0.3, 0.5],
      ...keys,
    });

  beforeAll(async () => {
    model = await storiesModel();
    const alpaca = JSON.parse(readFileSync(join(DATASETS_DIR, "alpaca-cleaned-1k/alpaca_data_cleaned_1000.json"), "utf8")) as unknown[];
    const code = JSON.parse(readFileSync(join(DATASETS_DIR, "codealpaca/code_alpaca_2k.json"), "utf8")) as unknown[];
    data = writeJsonl(join(tmp, "rows.jsonl"), [...alpaca.slice(0, 300), ...code.slice(0, 300)]);
    const r = await scoreOnly(cfg({ "score.out": join(tmp, "none.arrow") }), quiet);
    noneTokens = r.tokensProcessed;
    none = await readScoresFile(join(tmp, "none.arrow"));
  });

  it("confidence 1 runs every level for every row: the scores and the kept files of refine none", async () => {
    const out = join(tmp, "all.arrow");
    const r = await scoreOnly(cfg({ "score.out": out, "score.refine": "boundary", "score.refine_confidence": 1 }), quiet);
    expect(r.tokensProcessed).toBe(noneTokens);
    const all = await readScoresFile(out);
    for (const col of ["row", "dlc", "losses", "tokens", "status", "loss0"] as const) expect(all.cols[col], col).toEqual(none.cols[col]);
    expect(all.cols.dlc.every((d, i) => Number.isNaN(d) || all.cols.dlcExact![i] === 1)).toBe(true);
    for (const [name, scores] of [
      ["none", join(tmp, "none.arrow")],
      ["all", out],
    ] as const)
      await selectAndWrite(
        cfg({
          "score.out": scores,
          "score.refine": name === "all" ? "boundary" : "none",
          "score.refine_confidence": 1,
          "select.out_dir": join(tmp, `sel-${name}`),
        }),
        quiet,
      );
    for (const ratio of [0.1, 0.3, 0.5]) {
      const file = `flexrand-${ratio}/train.parquet`;
      const [all, plain] = await Promise.all([keptRows(join(tmp, "sel-all", file)), keptRows(join(tmp, "sel-none", file))]);
      // The same rows and values; refined scores add dlc_exact (every row exact here) and dlc_sd (null: exact).
      expect(all.map(({ dlc_exact: _e, dlc_sd: _s, ...rest }) => rest)).toEqual(plain);
      expect(all.every((r) => r.dlc_exact === true && r.dlc_sd === null)).toBe(true);
      expect(Object.keys(plain[0]!)).not.toContain("dlc_exact");
    }
  });

  it("kept files and the report of refined scores say which rows' DLC is an estimate, and its sd", async () => {
    const scores = join(tmp, "marked.arrow");
    const config = cfg({ "score.out": scores, "score.refine": "boundary", "select.out_dir": join(tmp, "sel-marked") });
    await scoreOnly(config, quiet);
    const { selections, report } = await selectAndWrite(config, { ...quiet, withReport: true });
    const { cols } = await readScoresFile(scores);
    let estimates = 0;
    for (const [i, ratio] of [0.1, 0.3, 0.5].entries()) {
      const rows = await keptRows(join(tmp, "sel-marked", `flexrand-${ratio}/train.parquet`));
      const keptRowIds = [...selections[0]!.ratios[i]!.keep.keys()].filter((r) => selections[0]!.ratios[i]!.keep[r]);
      expect(rows.length).toBe(keptRowIds.length);
      rows.forEach((row, j) => {
        const r = keptRowIds[j]!;
        expect(row.dlc).toBe(cols.dlc[r]);
        expect(row.dlc_exact).toBe(cols.dlcExact![r] === 1);
        expect(row.dlc_sd).toBe(cols.dlcExact![r] === 1 ? null : cols.dlcSd![r]);
        if (!row.dlc_exact) estimates++;
      });
    }
    expect(estimates).toBeGreaterThan(0);

    // The masking path over the rows that ran every level, with their count; estimates marked among the examples.
    const exact = [...cols.dlc.keys()].filter((r) => !Number.isNaN(cols.dlc[r]!) && cols.dlcExact![r] === 1);
    const { masking } = report!.runs[0]!;
    expect(masking.mean_loss_rows).toBe(exact.length);
    masking.mean_loss.forEach((m, k) => expect(m).toBeCloseTo(exact.reduce((a, r) => a + cols.losses[r * 3 + k]!, 0) / exact.length, 9));
    const shown = report!.examples.flatMap((g) => [...g.easiest, ...g.hardest]);
    for (const e of shown) expect(e.dlc_sd).toBe(cols.dlcExact![e.row] === 1 ? null : cols.dlcSd![e.row]);
    expect(shown.some((e) => e.dlc_sd !== null)).toBe(true);
    const html = readFileSync(join(tmp, "sel-marked/report.html"), "utf8");
    expect(html).toContain(`over the ${exact.length} rows that ran every level`);
    expect(html).toContain("(estimate)");
  });

  it("by default: exact DLC near the split, the same FlexRand intervals and kept rows, for fewer model tokens", async () => {
    const out = join(tmp, "refined.arrow");
    const r = await scoreOnly(cfg({ "score.out": out, "score.refine": "boundary" }), quiet);
    const refined = await readScoresFile(out);
    const { dlc, dlcExact, dlcSd, losses } = refined.cols;
    const cut: Cut = { strategy: "flexrand", at: 0.5 };
    expect(before(refined, cut)).toEqual(before(none, cut));
    const select = cfg({}).select;
    for (const seed of [0, 1, 2]) {
      const [a, b] = [selectRows(none, { ...select, seed }, null), selectRows(refined, { ...select, seed }, null)];
      a.ratios.forEach((x, i) => expect(Array.from(b.ratios[i]!.keep)).toEqual(Array.from(x.keep)));
    }
    expect(r.tokensProcessed).toBeLessThan(0.75 * noneTokens);
    let exact = 0;
    dlc.forEach((d, i) => {
      if (Number.isNaN(d)) return;
      if (dlcExact![i]) {
        exact++;
        expect(Math.abs(d - none.cols.dlc[i]!)).toBeLessThan(1e-5); // the same levels, in smaller batches
        expect(dlcSd![i]).toBeNaN();
      } else {
        expect(dlcSd![i]).toBeGreaterThan(0);
        expect(Number.isNaN(losses[i * 3 + 2]!)).toBe(true); // null past the levels it ran
        expect(losses[i * 3]).toBe(none.cols.losses[i * 3]); // level 0 ran for every row, in the same batches
      }
    });
    expect(exact).toBeGreaterThan(0);
    expect(exact).toBeLessThan(dlc.filter((d) => !Number.isNaN(d)).length / 2);
  });

  it("a run stopped part-way through the refinement resumes to the same bytes", async () => {
    const clean = join(tmp, "refined.arrow");
    const out = join(tmp, "stopped.arrow");
    const stop = new AbortController();
    const onProgress = (p: ScoreProgress) => p.phase === "score" && p.rows === "undecided" && p.rowsDone > 0 && stop.abort();
    await expect(
      scoreOnly(cfg({ "score.out": out, "score.refine": "boundary" }), { ...quiet, signal: stop.signal, onProgress }),
    ).rejects.toBeInstanceOf(Interrupted);
    const lines: string[] = [];
    const r = await scoreOnly(cfg({ "score.out": out, "score.refine": "boundary" }), { log: (l) => lines.push(l) });
    expect(r.resumed).toBe(true);
    expect(lines.join("\n")).toMatch(/resuming .* at level [23]\/3 \(rows near a boundary\)/);
    expect(readFileSync(out).equals(readFileSync(clean))).toBe(true);
  });

  it("shards refine their own rows, deterministically, and merge", async () => {
    const BLOCK = 64; // 600 rows: 5 blocks per shard
    const merged: Buffer[] = [];
    for (const attempt of [0, 1]) {
      const out = join(tmp, `sharded-${attempt}.arrow`);
      for (const index of [0, 1])
        await scoreOnly(cfg({ "score.out": out, "score.refine": "boundary", "score.block_rows": BLOCK }), {
          ...quiet,
          shard: { index, count: 2 },
        });
      await mergeShards(
        [0, 1].map((i) => join(tmp, `sharded-${attempt}.shard-${i}-of-2.arrow`)),
        join(tmp, `merged-${attempt}.arrow`),
        "score.out",
      );
      merged.push(readFileSync(join(tmp, `merged-${attempt}.arrow`)));
    }
    expect(merged[0]!.equals(merged[1]!)).toBe(true);
    const m = await readScoresFile(join(tmp, "merged-0.arrow"));
    const cut: Cut = { strategy: "flexrand", at: 0.5 };
    const [a, b] = [before(m, cut), before(none, cut)];
    const scored = none.cols.dlc.filter((d) => !Number.isNaN(d)).length;
    expect([...a].filter((r) => b.has(r)).length).toBeGreaterThanOrEqual(b.size - Math.ceil(0.005 * scored)); // each shard's own boundary
    expect(m.cols.dlcExact!.some((v) => v === 0)).toBe(true);
  });

  it("scores refined for one selection refuse another split, ratio or stratification", async () => {
    const scores = join(tmp, "refined.arrow");
    const base = { "score.out": scores, "score.refine": "boundary", "select.out_dir": join(tmp, "other") };
    await expect(selectAndWrite(cfg({ ...base, "select.split": 0.25 }), quiet)).rejects.toThrow(
      `${scores}: DLC is exact only near flexrand split 0.5 (score.refine boundary); this selection also needs flexrand split 0.25: rescore with this select config (run does it), or with score.refine none`,
    );
    await expect(selectAndWrite(cfg({ ...base, "select.strategies": ["hard"] }), quiet)).rejects.toThrow(
      "this selection also needs hard 0.1, hard 0.3, hard 0.5",
    );
    await expect(selectAndWrite(cfg({ ...base, "select.stratify": "input" }), quiet)).rejects.toThrow(
      "select.stratify input needs each group's boundaries",
    );
    // Selections that do not rank by DLC need no boundary; the manifest counts the exact and estimated rows.
    const { manifest, scores: refined } = await selectAndWrite(
      cfg({ ...base, "select.strategies": ["flexrand", "random", { strategy: "hard", by: "loss0" }] }),
      quiet,
    );
    const exact = refined.cols.dlcExact!.reduce((a, v) => a + v, 0);
    const scored = refined.cols.dlc.filter((d) => !Number.isNaN(d)).length;
    expect(manifest.refine).toMatchObject({ exact, estimated: scored - exact, boundaries: ["flexrand split 0.5"] });
    expect(manifest.refine!.expected_agreement).toBeGreaterThan(0.999);
    expect(manifest.refine!.expected_agreement).toBeLessThan(1);
  });
});
