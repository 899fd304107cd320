// `dlc-prune estimate` and `run --dry-run`: the cost of a run before paying for it, nothing written. (How
// close the predicted wall time comes to a run's is measured by `npm run bench`, not here.)
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { estimate } from "../../src/run/estimate.js";
import { runCli } from "../helpers/cli.js";
import { testConfig } from "../helpers/config.js";
import { tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();
let model: string;

/** 60 rows; every 10th has an empty response, every 7th a long one that 150 tokens cannot hold. */
const rows = Array.from({ length: 60 }, (_, i) => ({
  instruction: `Say something about the city, number ${i}.`,
  input: "",
  output:
    i % 10 === 3 ? "" : i % 7 === 0 ? "The people of the small city like the plan for water. ".repeat(6) : `The city has water, ${i}.`,
}));

beforeAll(async () => {
  model = await tinyModel();
  writeJsonl(join(tmp, "d.jsonl"), rows);
});

const keys = () => ({
  "data.path": join(tmp, "d.jsonl"),
  "model.path": model,
  "score.max_tokens": 150,
  "score.out": join(tmp, "out/s.arrow"),
  "select.out_dir": join(tmp, "out"),
});

describe("estimate", () => {
  it("counts rows, tokens, batches, statuses and prices a run, writing nothing", async () => {
    const e = await estimate(testConfig(keys()));
    expect(e.rows).toEqual({ total: 60, read: 60, sampled: false });
    // Counted from the rows: 6 empty responses (i % 10 = 3); the long ones (i % 7 = 0) are cut.
    const long = rows.filter((r, i) => i % 7 === 0 && r.output !== "").length;
    expect(e.by_status).toEqual({ ok: 60 - 6 - long, truncated: long, "empty-response": 6 });
    expect(e.levels).toBe(3);
    expect(e.tokens_per_pass).toBeGreaterThan(0);
    expect(e.padding).toBeGreaterThanOrEqual(0);
    expect(e.seconds.total).toBeCloseTo(
      e.seconds.load + e.seconds.tokenize + e.seconds.inspect_and_write + 3 * (e.seconds.per_level_setup + e.seconds.per_pass),
      9,
    );
    expect(e.seconds.per_pass).toBeGreaterThan(0);
    expect(e.peak_rss_mib).toBeGreaterThan(50);
    expect(existsSync(join(tmp, "out"))).toBe(false);
    // The range: every pass at the calibration's fastest and slowest batch relative to the fit.
    const [fast, slow] = e.seconds.per_pass_spread;
    expect(fast).toBeLessThanOrEqual(1);
    expect(slow).toBeGreaterThanOrEqual(1);
    const fixed = e.seconds.total - 3 * e.seconds.per_pass;
    expect(e.seconds.total_range[0]).toBeCloseTo(fixed + fast * 3 * e.seconds.per_pass, 9);
    expect(e.seconds.total_range[1]).toBeCloseTo(fixed + slow * 3 * e.seconds.per_pass, 9);
    expect(e.refine_share).toBe(1);
  });

  it("with score.refine: boundary, the range's low end runs the masked levels on the calibration rows only", async () => {
    const e = await estimate(testConfig({ ...keys(), "score.refine": "boundary", "score.refine_sample": 0.1 }));
    // 0.1 of 60 rows is under the 50-row minimum: 50 / 60 of the rows.
    expect(e.refine_share).toBeCloseTo(50 / 60, 12);
    const [fast, slow] = e.seconds.per_pass_spread;
    const fixed = e.seconds.total - 3 * e.seconds.per_pass;
    expect(e.seconds.total_range[0]).toBeCloseTo(fixed + fast * e.seconds.per_pass * (1 + 2 * (50 / 60)), 9);
    expect(e.seconds.total_range[1]).toBeCloseTo(fixed + slow * 3 * e.seconds.per_pass, 9);
  });

  it("--limit reads a slice; with --sample, a seeded sample scaled to all rows", async () => {
    const first = await estimate(testConfig(keys()), { limit: 20 });
    expect(first.rows).toEqual({ total: 60, read: 20, sampled: false });
    expect(Object.values(first.by_status).reduce((a, b) => a + b, 0)).toBe(20);
    const sample = await estimate(testConfig(keys()), { limit: 30, sample: true });
    expect(sample.rows).toEqual({ total: 60, read: 30, sampled: true });
    expect(Object.values(sample.by_status).reduce((a, b) => a + b, 0)).toBe(60);
    const again = await estimate(testConfig(keys()), { limit: 30, sample: true });
    expect(again.by_status).toEqual(sample.by_status); // the same seeded sample
  });

  it("from the CLI, estimate and run --dry-run print the figures and write nothing", () => {
    for (const cmd of [["estimate"], ["run", "--dry-run"]]) {
      const r = runCli([...cmd, "--config", "/dev/null", ...Object.entries(keys()).flatMap(([k, v]) => ["--set", `${k}=${v}`])], {
        cwd: tmp,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^rows: 60: 54 to score, by status \d+ ok, \d+ truncated, 6 empty-response$/m);
      expect(r.stdout).toMatch(/^tokens per pass: \d+ in \d+ batches \(padding \d+\.\d%\), 3 levels, on cpu$/m);
      expect(r.stdout).toMatch(/^expected wall time: \d+(s|m\d\ds)/m);
      expect(r.stdout).toMatch(/^likely between \d+(s|m\d\ds) and \d+(s|m\d\ds): the calibration's batches ran /m);
      expect(r.stdout).toMatch(/^peak memory: \d+ MiB/m);
      expect(readdirSync(tmp).sort()).toEqual(["d.jsonl"]);
    }
  });
});
