// Crafted model folders (issue 20, point 7): a model folder may come from someone else (a shared folder, a
// download), so dlc-prune reads only regular files inside it, and checks every size the model declares against
// the bytes present before it allocates anything. Each case is a copy of the tiny model with one part changed
// through the ONNX codec; every refusal is one line naming the file (and the initializer), never a crash.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType,
  NodeProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
} from "onnx-buf";
import { beforeAll, describe, expect, it } from "vitest";
import { ONNX_FILE } from "../../src/model/folder.js";
import { loadScoringModel, type ScoringModel } from "../../src/model/scoring-graph.js";
import { UserError } from "../../src/util/errors.js";
import { DataType, decodeModel, encodeModel, setExternal, type ModelProto, type TensorProto } from "../../src/model/onnx.js";
import { CLI } from "../helpers/cli.js";
import { alpacaRows, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-model-folder-");
let external: string; // weights in onnx/model.onnx_data
let inline: string; // weights inside onnx/model.onnx
const DATA = "model.onnx_data";

interface Result {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * `dlc-prune score` with `model` in a folder of its own. The code before these checks could block on a FIFO
 * or read /dev/zero without end: a time limit turns that into a failed assertion instead of a stuck suite.
 */
function score(model: string, timeout = 30_000): Result {
  const dir = join(model, "..");
  writeJsonl(join(dir, "d.jsonl"), alpacaRows(3));
  const r = spawnSync(process.execPath, [CLI, "score", "--data", "d.jsonl", "--model", model, "--out", "s.arrow"], {
    cwd: dir,
    encoding: "utf8",
    timeout,
    killSignal: "SIGKILL",
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function oneLineError(r: Result, ...mentions: string[]): string {
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, r.stdout + r.stderr).toBe(1);
  expect(r.stderr, "no stack trace").not.toMatch(/internal error|^\s+at .+[(:]\d+/m);
  const lines = r.stderr
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("dlc-prune: error: "));
  expect(lines, r.stderr).toHaveLength(1);
  for (const m of mentions) expect(lines[0], r.stderr).toContain(m);
  return lines[0]!;
}

const none = { include: [], exclude: [] };

/** The one-line UserError loading `model` for scoring fails with (in-process: quick, for checks that cannot hang or crash). */
async function refused(model: string, ...mentions: string[]): Promise<string> {
  const err = await loadScoringModel(model, none).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "refused").toBeInstanceOf(UserError);
  const message = (err as Error).message;
  expect(message).not.toContain("\n");
  for (const m of mentions) expect(message).toContain(m);
  return message;
}

/** A copy of `base` as <case>/model, its graph changed by `change` (which may also change the folder's files). */
function craft(name: string, base: string, change: (m: ModelProto, dir: string) => void = () => {}): string {
  const dir = join(tmp, name, "model");
  mkdirSync(join(tmp, name), { recursive: true });
  cpSync(base, dir, { recursive: true });
  const model = decodeModel(readFileSync(join(dir, ONNX_FILE)));
  change(model, dir);
  writeFileSync(join(dir, ONNX_FILE), encodeModel(model));
  return dir;
}

/** Every weight buffer of a loaded model, maskable then fixed, with their names. */
const weightBytes = (m: ScoringModel) =>
  Buffer.concat(
    [...m.maskable.map((w) => w.buffer), ...m.unmasked.map((w) => w.buffer), ...m.fixed].flatMap((b) => [Buffer.from(b.path), b.data]),
  );
const initializer = (m: ModelProto, name: string): TensorProto => m.graph!.initializer.find((t) => t.name === name)!;
const EMBED = "model.embed_tokens.weight"; // in external data, first in the file
const Q0 = "model.layers.0.self_attn.q_proj.MatMul.weight"; // the first maskable weight: the first read

function setEntry(t: TensorProto, key: string, value: string): void {
  const entry = t.externalData.find((e) => e.key === key);
  if (entry) entry.value = value;
  else t.externalData.push(create(StringStringEntryProtoSchema, { key, value }));
}

beforeAll(async () => {
  [external, inline] = await Promise.all([tinyModel({ externalData: true }), tinyModel()]);
}, 120_000);

describe("external data stays inside the model folder", () => {
  it("a location that leads out (../, an absolute path, /etc/passwd, a symlink) is refused naming the initializer", async () => {
    const cases: [string, (m: ModelProto, dir: string) => string, string][] = [
      [
        "parent",
        (m) => (setEntry(initializer(m, EMBED), "location", "../../victim/w.bin"), "../../victim/w.bin"),
        "leads outside the model folder",
      ],
      [
        "absolute",
        (m) => (setEntry(initializer(m, EMBED), "location", join(tmp, "absolute/victim/w.bin")), join(tmp, "absolute/victim/w.bin")),
        "is an absolute path",
      ],
      [
        "passwd",
        (m) => (setEntry(initializer(m, EMBED), "location", "../".repeat(40) + "etc/passwd"), "etc/passwd"),
        "leads outside the model folder",
      ],
      [
        "link",
        (_m, dir) => {
          rmSync(join(dir, "onnx", DATA));
          symlinkSync(join(dir, "../victim/w.bin"), join(dir, "onnx", DATA));
          return DATA;
        },
        "leads outside the model folder",
      ],
    ];
    for (const [name, change, problem] of cases) {
      // The victim holds the model's own weights: a reader that follows the location succeeds, silently.
      mkdirSync(join(tmp, name, "victim"), { recursive: true });
      cpSync(join(external, "onnx", DATA), join(tmp, name, "victim/w.bin"));
      let location = "";
      const model = craft(name, external, (m, dir) => (location = change(m, dir)));
      await refused(
        model,
        `${join(model, ONNX_FILE)}: initializer ${name === "link" ? Q0 : EMBED}: external data location`,
        problem,
        location,
      );
    }
  });

  it("a Hugging Face cache layout (model.onnx and its data linked into one blobs folder) still loads, with the same identity", async () => {
    const plain = craft("plain", external);
    const snap = craft("hf", external);
    const blobs = join(tmp, "hf/blobs");
    mkdirSync(blobs);
    for (const [file, blob] of [
      [ONNX_FILE, "aaaa"],
      [`onnx/${DATA}`, "bbbb"],
    ] as const) {
      renameSync(join(snap, file), join(blobs, blob));
      symlinkSync(`../../blobs/${blob}`, join(snap, file));
    }
    const [a, b] = await Promise.all([loadScoringModel(plain, none), loadScoringModel(snap, none)]);
    expect(b.sha256).toEqual(a.sha256);
    expect(Object.keys(b.sha256)).toEqual([ONNX_FILE, `onnx/${DATA}`, "tokenizer.json", "tokenizer_config.json"]);
    expect(weightBytes(b).equals(weightBytes(a))).toBe(true);
  });

  it("external data in a node attribute (read by no check of ours) is refused", () => {
    const model = craft("attribute", external, (m) => {
      const t = create(TensorProtoSchema, { name: "sneaky", dataType: DataType.FLOAT, dims: [2n] });
      setExternal(t, { location: "../../victim/w.bin", offset: 0, length: 8 });
      const value = create(AttributeProtoSchema, { name: "value", type: AttributeProto_AttributeType.TENSOR, t });
      m.graph!.node.unshift(create(NodeProtoSchema, { name: "/sneaky", opType: "Constant", output: ["sneaky_out"], attribute: [value] }));
    });
    oneLineError(score(model), `${join(model, ONNX_FILE)}: node /sneaky attribute value (sneaky) keeps its values in external data`);
  });
});

describe("only regular files are read", () => {
  it("onnx/model.onnx, config.json or tokenizer.json that is a device, a FIFO or a folder; a FIFO or a folder as external data", () => {
    const cases: [string, string, (dir: string) => void, string][] = [
      ["onnx-zero", ONNX_FILE, (dir) => (rmSync(join(dir, ONNX_FILE)), symlinkSync("/dev/zero", join(dir, ONNX_FILE))), "is a device"],
      [
        "config-zero",
        "config.json",
        (dir) => (rmSync(join(dir, "config.json")), symlinkSync("/dev/zero", join(dir, "config.json"))),
        "is a device",
      ],
      [
        "tokenizer-fifo",
        "tokenizer.json",
        (dir) => (rmSync(join(dir, "tokenizer.json")), spawnSync("mkfifo", [join(dir, "tokenizer.json")])),
        "is a named pipe (FIFO)",
      ],
      [
        "data-fifo",
        `onnx/${DATA}`,
        (dir) => (rmSync(join(dir, "onnx", DATA)), spawnSync("mkfifo", [join(dir, "onnx", DATA)])),
        "is a named pipe (FIFO)",
      ],
      ["data-folder", `onnx/${DATA}`, (dir) => (rmSync(join(dir, "onnx", DATA)), mkdirSync(join(dir, "onnx", DATA))), "is a folder"],
    ];
    for (const [name, file, change, what] of cases) {
      let model = "";
      model = craft(name, external, (_m, dir) => change(dir));
      oneLineError(score(model, 20_000), `${join(model, file)}: ${what}, not a regular file`);
    }
  });

  it("a location reaching /dev/zero through a symlink is refused before it is opened", () => {
    const model = craft(
      "data-zero",
      external,
      (_m, dir) => (rmSync(join(dir, "onnx", DATA)), symlinkSync("/dev/zero", join(dir, "onnx", DATA))),
    );
    oneLineError(
      score(model, 20_000),
      `initializer ${Q0}: external data location "${DATA}" leads outside the model folder`,
      "(to /dev/zero)",
    );
  });
});

describe("declared sizes are checked against the bytes present before anything is allocated", () => {
  it("a weight claiming 64 x 2^30 elements with small raw data", () => {
    const model = craft("huge-dims", inline, (m) => {
      initializer(m, Q0).dims = [64n, 2n ** 30n];
    });
    // Through the CLI: this was "internal error: RangeError: Invalid typed array length".
    oneLineError(
      score(model),
      `${join(model, ONNX_FILE)}: initializer ${Q0} declares dims [64, 1073741824] of FLOAT (274877906944 bytes) but holds 16384 bytes of raw data`,
    );
  });

  it("external data whose length disagrees with the dims, or runs past the end of its file", async () => {
    const size = readFileSync(join(external, "onnx", DATA)).byteLength;
    const longer = craft("ext-length", external, (m) => setEntry(initializer(m, EMBED), "length", String(2 ** 40)));
    await refused(
      longer,
      `initializer ${EMBED} declares dims [512, 64] of FLOAT (131072 bytes) but its external data is 1099511627776 bytes`,
    );
    const past = craft("ext-past", external, (m) => setEntry(initializer(m, EMBED), "offset", String(size - 64)));
    await refused(
      past,
      `initializer ${EMBED}: its external data (offset ${size - 64}, length 131072) runs past the end of ${join(past, "onnx", DATA)} (${size} bytes)`,
    );
    const bad = craft("ext-offset", external, (m) => setEntry(initializer(m, EMBED), "offset", "-5"));
    await refused(bad, `initializer ${EMBED} has an external data offset of "-5", not a byte count`);
  });

  it("initializers pointing many times at the same bytes cannot claim more memory than the files hold", async () => {
    const model = craft("overlap", external, (m) => {
      const embed = initializer(m, EMBED);
      for (let i = 0; i < 8; i++) {
        const t = create(TensorProtoSchema, { name: `alias${i}`, dataType: embed.dataType, dims: embed.dims });
        setExternal(t, { location: DATA, offset: 0, length: 131072 });
        m.graph!.initializer.push(t);
      }
    });
    await refused(model, `${join(model, ONNX_FILE)}: the initializers claim`, "more than the model's files hold", "overlap");
  });

  it("a config.json that is not an object is named", async () => {
    const model = craft("config-null", external, (_m, dir) => writeFileSync(join(dir, "config.json"), "null"));
    await refused(model, `${join(model, "config.json")}: not a JSON object`);
  });
});

it("external data is read in chunks: weights across a chunk's edge arrive whole, and the hash is the whole file's", async () => {
  // The weights moved 16 MiB - 100 bytes down the file (dlc-prune reads 16 MiB at a time), so one straddles the
  // edge; the weights must be those of the untouched model.
  const shift = 2 ** 24 - 100;
  const model = craft("chunks", external, (m, dir) => {
    const data = readFileSync(join(dir, "onnx", DATA));
    writeFileSync(join(dir, "onnx", DATA), Buffer.concat([Buffer.alloc(shift, 7), data]));
    for (const t of m.graph!.initializer) {
      const offset = t.externalData.find((e) => e.key === "offset");
      if (offset) offset.value = String(Number(offset.value) + shift);
    }
  });
  const plain = craft("chunks-ref", external);
  const [moved, ref] = await Promise.all([loadScoringModel(model, none), loadScoringModel(plain, none)]);
  expect(weightBytes(moved).equals(weightBytes(ref))).toBe(true);
  expect(moved.sha256[`onnx/${DATA}`]).toBe(
    createHash("sha256")
      .update(readFileSync(join(model, "onnx", DATA)))
      .digest("hex"),
  );
});
