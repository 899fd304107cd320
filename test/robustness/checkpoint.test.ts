// A checkpoint that is damaged or edited (issue 20, point 2) is never used: it is discarded with one log line
// saying why, and scoring starts over, ending with the scores of an uninterrupted run. Never a wrong resume,
// never a stack trace.
import { createHash } from "node:crypto";
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { scoreOnly, type ScoreProgress } from "../../src/run/score.js";
import { Interrupted } from "../../src/util/errors.js";
import { quiet, testConfig } from "../helpers/config.js";
import { alpacaRows, lcg, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-checkpoint-");
let model: string;
let data: string;
let clean: Buffer;
/** The work folder of a run stopped part-way through level 2 of 3. */
let saved: string;

const cfg = (out: string) =>
  testConfig({
    "data.path": data,
    "model.path": model,
    "score.out": out,
    "score.batch_tokens": 64,
    "score.levels": 3,
    "score.checkpoint_seconds": 3600,
  });

interface State {
  pass: number;
  nextBatch: number;
  fingerprint: string;
  checksum?: string;
}

const readState = (work: string) => JSON.parse(readFileSync(join(work, "state.json"), "utf8")) as State;
const writeState = (work: string, state: State) => writeFileSync(join(work, "state.json"), JSON.stringify(state, null, 2));

/** Float64 losses of a work folder, changed by `edit`, written back with the same size. */
function editLosses(work: string, edit: (losses: Float64Array) => void): void {
  const bytes = readFileSync(join(work, "losses.f64"));
  const losses = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  edit(losses);
  writeFileSync(join(work, "losses.f64"), new Uint8Array(losses.buffer));
}

/**
 * The checksum recomputed over an edited state, as someone who knows the format would: what is left to
 * catch such a checkpoint is the check of each field against the run.
 */
function reseal(work: string): void {
  const state = readState(work);
  const losses = readFileSync(join(work, "losses.f64"));
  state.checksum = createHash("sha256").update(`${state.pass}/${state.nextBatch}/${state.fingerprint}\n`).update(losses).digest("hex");
  writeState(work, state);
}

/** Scores to a fresh `name` from a copy of the saved progress, changed by `tamper`; the log lines. */
async function resumeFrom(name: string, tamper: (work: string) => void): Promise<{ out: string; lines: string[]; resumed: boolean }> {
  const out = join(tmp, `${name}.arrow`);
  cpSync(saved, `${out}.work`, { recursive: true });
  tamper(`${out}.work`);
  const lines: string[] = [];
  const r = await scoreOnly(cfg(out), { log: (l) => lines.push(l) });
  return { out, lines, resumed: r.resumed };
}

/** Discarded with one line naming the state file and `why`, rescored from the start to the uninterrupted bytes. */
async function discarded(name: string, why: string | RegExp, tamper: (work: string) => void): Promise<void> {
  const { out, lines, resumed } = await resumeFrom(name, tamper);
  const said = lines.filter((l) => l.includes("the checkpoint is damaged"));
  expect(said, lines.join("\n")).toHaveLength(1);
  expect(said[0]).toContain(`${out}.work/state.json: the checkpoint is damaged (`);
  expect(said[0]).toMatch(why);
  expect(said[0]).toMatch(/\): discarded, scoring starts over$/);
  expect(lines.some((l) => l.startsWith("resuming"))).toBe(false);
  expect(resumed).toBe(false);
  expect(existsSync(`${out}.work`)).toBe(false);
  expect(readFileSync(out).equals(clean)).toBe(true);
}

beforeAll(async () => {
  model = await tinyModel();
  data = writeJsonl(join(tmp, "d.jsonl"), alpacaRows(16));
  await scoreOnly(cfg(join(tmp, "clean.arrow")), quiet);
  clean = readFileSync(join(tmp, "clean.arrow"));
  const stopped = join(tmp, "stopped.arrow");
  const stop = new AbortController();
  const onProgress = (p: ScoreProgress) => p.phase === "score" && p.level === 1 && p.rowsDone > 0 && stop.abort();
  await expect(scoreOnly(cfg(stopped), { ...quiet, signal: stop.signal, onProgress })).rejects.toBeInstanceOf(Interrupted);
  saved = join(tmp, "saved.work");
  cpSync(`${stopped}.work`, saved, { recursive: true });
  rmSync(`${stopped}.work`, { recursive: true });
});

describe("a damaged or edited checkpoint is discarded, never used", () => {
  it("the saved progress itself resumes (the cases below differ from it by their tampering alone)", async () => {
    expect(readState(saved)).toMatchObject({ pass: 1, nextBatch: 1 });
    const { out, lines, resumed } = await resumeFrom("intact", () => {});
    expect(resumed).toBe(true);
    expect(lines.join("\n")).toContain(`resuming ${out} at level 2/3, batch 2/`);
    expect(readFileSync(out).equals(clean)).toBe(true);
  });

  it("losses overwritten with other values of the same size", async () => {
    await discarded("losses-edited", "state.json and losses.f64 do not match their checksum", (work) =>
      editLosses(work, (l) => l.forEach((v, i) => v >= 0 && (l[i] = v + 0.25))),
    );
  });

  it("every loss NaN", async () => {
    await discarded("losses-nan", "do not match their checksum", (work) => editLosses(work, (l) => l.fill(NaN)));
  });

  it("nextBatch 999999: by the checksum, and by the field when the checksum is recomputed", async () => {
    const edit = (work: string) => writeState(work, { ...readState(work), nextBatch: 999999 });
    await discarded("batch-far", "do not match their checksum", edit);
    await discarded("batch-far-resealed", /^.*\(batch 999999 of \d+ in pass 1\)/, (work) => (edit(work), reseal(work)));
  });

  it("a pass out of range: by the checksum, and by the field (never 'internal error ... alone')", async () => {
    const edit = (work: string) => writeState(work, { ...readState(work), pass: 7 });
    await discarded("pass-far", "do not match their checksum", edit);
    await discarded("pass-far-resealed", "(pass 7 of 3)", (work) => (edit(work), reseal(work)));
    // Every pass done, yet a batch to run: not a state any run writes.
    await discarded(
      "pass-done-batch",
      "(batch 2 of",
      (work) => (writeState(work, { ...readState(work), pass: 3, nextBatch: 2 }), reseal(work)),
    );
  });

  it("a negative loss other than 'not run yet' (resealed)", async () => {
    await discarded("loss-negative", /\(loss -5 of row \d+\)/, (work) => (editLosses(work, (l) => (l[0] = -5)), reseal(work)));
  });

  it("a truncated state, a state without its checksum, a missing or short losses file", async () => {
    await discarded("state-truncated", "not valid JSON", (work) =>
      writeFileSync(join(work, "state.json"), readFileSync(join(work, "state.json"), "utf8").slice(0, 40)),
    );
    await discarded("state-no-checksum", "checksum: ", (work) => {
      const { checksum: _checksum, ...rest } = readState(work);
      writeState(work, rest);
    });
    await discarded("losses-missing", "(losses.f64 is missing)", (work) => rmSync(join(work, "losses.f64")));
    await discarded("losses-short", /\(losses\.f64 has \d+ bytes, not \d+\)/, (work) =>
      writeFileSync(join(work, "losses.f64"), readFileSync(join(work, "losses.f64")).subarray(8)),
    );
  });

  it("progress of another run is still refused, not discarded (--restart starts over)", async () => {
    const out = join(tmp, "other-run.arrow");
    cpSync(saved, `${out}.work`, { recursive: true });
    await expect(scoreOnly({ ...cfg(out), score: { ...cfg(out).score, levels: 4 } }, quiet)).rejects.toThrow(
      /holds progress of a different run \(masking\.levels: 3 -> 4\); rerun with --restart/,
    );
    expect(readState(`${out}.work`)).toEqual(readState(saved));
  });
});

describe("a property: any tampering of a saved checkpoint (seeded)", () => {
  /** One random change of the kinds a disk or a careless edit makes, never resealed. */
  const TAMPERS: ((work: string, rand: () => number) => void)[] = [
    // Bytes of the losses flipped in place.
    (work, rand) => {
      const bytes = readFileSync(join(work, "losses.f64"));
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) bytes[Math.floor(rand() * bytes.length)] ^= 1 + Math.floor(rand() * 255);
      writeFileSync(join(work, "losses.f64"), bytes);
    },
    // A field of the state set to another whole number (negative, in range or far out).
    (work, rand) => {
      const state = readState(work);
      const field = rand() < 0.5 ? "pass" : "nextBatch";
      const value = [-1, 0, 1, 2, 3, 5, 999999][Math.floor(rand() * 7)]!;
      writeState(work, { ...state, [field]: value === state[field] ? value + 1 : value });
    },
    // The state or the losses cut short at a random byte.
    (work, rand) => {
      const file = join(work, rand() < 0.5 ? "state.json" : "losses.f64");
      const bytes = readFileSync(file);
      writeFileSync(file, bytes.subarray(0, Math.floor(rand() * bytes.length)));
    },
    // A range of the losses overwritten with random doubles of the same size.
    (work, rand) =>
      editLosses(work, (l) => {
        const from = Math.floor(rand() * l.length);
        for (let i = from; i < Math.min(l.length, from + 1 + Math.floor(rand() * 8)); i++) l[i] = rand() * 20 - 5;
      }),
  ];

  it("is discarded with one log line, and the rerun ends with the uninterrupted run's scores", async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const rand = lcg(seed);
      await discarded(`seed-${seed}`, /\(.+\)/, (work) => TAMPERS[(seed - 1) % TAMPERS.length]!(work, rand));
    }
  }, 300_000);
});
