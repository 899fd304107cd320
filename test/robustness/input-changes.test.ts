// Issue 20, point 1: the data file changes while a run goes on (replaced, rewritten in place, grown). The
// outputs of a run come from the bytes that were scored, or nothing is published: the run ends with one
// line naming the file, and the output folder holds no kept file, no manifest and no temporary file.
// The change is made from the progress callback, after some batches have been scored.
import { appendFileSync, existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parquetWriteFile } from "hyparquet-writer";
import { beforeAll, describe, expect, it } from "vitest";
import { run } from "../../src/run/pipeline.js";
import { UserError } from "../../src/util/errors.js";
import { quiet, testConfig } from "../helpers/config.js";
import { plain, readParquetRows } from "../helpers/duckdb.js";
import { alpacaRows, lcg, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-changes-");
let model: string;

beforeAll(async () => {
  model = await tinyModel();
});

/** Runs the whole job on `data` in `dir`, calling `change` once, after `afterBatches` scored batches. */
async function runChanging(dir: string, data: string, change: () => void, afterBatches = 2) {
  let batches = 0;
  const config = testConfig({
    "data.path": data,
    "model.path": model,
    "score.out": join(dir, "s.arrow"),
    "select.out_dir": join(dir, "out"),
    "select.ratios": [1],
    "score.levels": 2,
    "score.batch_tokens": 64,
  });
  return run(config, {
    ...quiet,
    onProgress: (p) => {
      if (p.phase === "score" && ++batches === afterBatches) change();
    },
  });
}

/** Nothing was published in the output folder: no kept file, manifest, report, or temporary file. */
function nothingPublished(dir: string): void {
  const out = join(dir, "out");
  const left = existsSync(out) ? readdirSync(out, { recursive: true }).map(String) : [];
  expect(left.filter((f) => !f.endsWith("s.arrow"))).toEqual([]);
}

async function refused(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message).not.toContain("\n");
  return (err as Error).message;
}

const changed = (data: string) =>
  new RegExp(
    `^${data.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: (changed (while dlc-prune was reading it|since it was scored)|has more rows than the \\d+ that were scored)`,
  );

describe("1: a data file that changes during the run publishes nothing", () => {
  it("replaced by the same rows in reverse order", async () => {
    const dir = join(tmp, "reversed");
    const rows = alpacaRows(20);
    const data = writeJsonl(join(tmp, "reversed.jsonl"), rows);
    const message = await refused(
      runChanging(dir, data, () => {
        writeJsonl(`${data}.new`, [...rows].reverse());
        renameSync(`${data}.new`, data);
      }),
    );
    expect(message).toMatch(changed(data));
    expect(message).toContain("nothing was published");
    nothingPublished(dir);
  }, 60_000);

  it("rewritten in place with one response changed (same size)", async () => {
    const dir = join(tmp, "edited");
    const data = writeJsonl(join(tmp, "edited.jsonl"), alpacaRows(20));
    const text = readFileSync(data, "utf8");
    const message = await refused(runChanging(dir, data, () => writeFileSync(data, text.replace("number 7.", "number X."))));
    expect(message).toMatch(changed(data));
    nothingPublished(dir);
  }, 60_000);

  it("grown from 40 to 80 rows", async () => {
    const dir = join(tmp, "grown");
    const rows = alpacaRows(80);
    const data = writeJsonl(join(tmp, "grown.jsonl"), rows.slice(0, 40));
    const message = await refused(
      runChanging(dir, data, () =>
        appendFileSync(
          data,
          rows
            .slice(40)
            .map((r) => JSON.stringify(r) + "\n")
            .join(""),
        ),
      ),
    );
    expect(message).toMatch(changed(data));
    nothingPublished(dir);
  }, 60_000);

  it("a Parquet file replaced", async () => {
    const dir = join(tmp, "parquet");
    const write = (path: string, rows: Record<string, unknown>[]) =>
      parquetWriteFile({
        filename: path,
        columnData: ["instruction", "input", "output"].map((name) => ({
          name,
          data: rows.map((r) => r[name] as string),
          type: "STRING" as const,
        })),
      });
    const rows = alpacaRows(20);
    const data = join(tmp, "rows.parquet");
    write(data, rows);
    const message = await refused(
      runChanging(dir, data, () => {
        write(`${data}.new.parquet`, [...rows].reverse());
        renameSync(`${data}.new.parquet`, data);
      }),
    );
    expect(message).toMatch(changed(data));
    nothingPublished(dir);
  }, 60_000);
});

describe("1: a property: inputs changed between passes (seeded)", () => {
  type Change = "none" | "reverse" | "edit" | "append" | "truncate" | "swap";
  const CHANGES: Change[] = ["none", "reverse", "edit", "append", "truncate", "swap"];

  it("either the outputs hold exactly the rows that were scored, or the run is refused and publishes nothing", async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const rand = lcg(seed);
      const n = 12 + Math.floor(rand() * 12);
      const rows = alpacaRows(n + 6).map((r, i) => ({ ...r, w: i % 3 ? i + 0.5 : i, f: 1.0 }));
      const kind = CHANGES[(seed - 1) % CHANGES.length]!;
      const dir = join(tmp, `prop-${seed}`);
      const data = writeJsonl(join(tmp, `prop-${seed}.jsonl`), rows.slice(0, n));
      const before = readFileSync(data);
      const after = (): Buffer => {
        const current = rows.slice(0, n);
        const lines = (rs: Record<string, unknown>[]) => Buffer.from(rs.map((r) => JSON.stringify(r) + "\n").join(""));
        if (kind === "reverse") return lines([...current].reverse());
        if (kind === "edit") return Buffer.from(before.toString("utf8").replace(`number ${Math.floor(rand() * n)}.`, "number Z."));
        if (kind === "append") return lines(rows.slice(0, n + 1 + Math.floor(rand() * 5)));
        if (kind === "truncate") return lines(current.slice(0, n - 1 - Math.floor(rand() * 3)));
        if (kind === "swap") return lines(current.map((r, i) => (i === 0 ? current[1]! : i === 1 ? current[0]! : r)));
        return before;
      };
      const change = () => {
        const bytes = after();
        if (kind !== "none") expect(bytes.equals(before), `seed ${seed}: ${kind} changes the file`).toBe(false);
        writeFileSync(data, bytes);
      };
      const job = runChanging(dir, data, change, 1 + Math.floor(rand() * 3));
      if (kind === "none") {
        const result = await job;
        expect(result.kind).toBe("selected");
        const kept = (await readParquetRows(join(dir, "out/flexrand-1/train.parquet"))).map((r) => {
          const { dlc: _dlc, ...rest } = plain(r) as Record<string, unknown>;
          return rest;
        });
        expect(kept, `seed ${seed}`).toEqual(rows.slice(0, n));
      } else {
        expect(await refused(job), `seed ${seed}: ${kind}`).toMatch(changed(data));
        nothingPublished(dir);
      }
    }
  }, 240_000);
});
