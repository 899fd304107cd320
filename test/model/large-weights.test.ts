// A weight file over 2 GiB (past fs.readFile's limit, and offsets past 2^31) scores exactly like the same
// weights split into two smaller files. The model kit's fp32 model of 550M parameters (2.2 GB of external
// data) is the smallest that needs it; building and scoring it twice takes about three minutes on 2 cores.
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { readScoresFile } from "../../src/contract/file.js";
import { decodeModel, encodeModel, type TensorProto } from "../../src/model/onnx.js";
import { runCli } from "../helpers/cli.js";
import { tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-large-");
const DATA = "model.onnx_data";

it("a 2.2 GB external data file scores like the same weights in two files", async () => {
  const big = await tinyModel({ hidden: 2048, layers: 12, heads: 16, kv_heads: 4, intermediate: 5632, vocab: 2048, max_positions: 256 });
  const size = statSync(join(big, "onnx", DATA)).size;
  expect(size).toBeGreaterThan(2 ** 31);

  // The split copy: tensors from the first at or past 1 GiB move to a second file, offsets shifted.
  const split = join(tmp, "split");
  cpSync(big, split, { recursive: true, filter: (src) => !src.endsWith(DATA) });
  const model = decodeModel(readFileSync(join(big, "onnx/model.onnx")));
  const offsetOf = (t: TensorProto) => Number(t.externalData.find((e) => e.key === "offset")?.value ?? -1);
  const cut = Math.min(...model.graph!.initializer.map(offsetOf).filter((o) => o >= 2 ** 30));
  let moved = 0;
  for (const t of model.graph!.initializer)
    if (offsetOf(t) >= cut) {
      for (const e of t.externalData) if (e.key === "location") e.value = "second.bin";
      t.externalData.find((e) => e.key === "offset")!.value = String(offsetOf(t) - cut);
      moved++;
    }
  expect(moved).toBeGreaterThan(10);
  writeFileSync(join(split, "onnx/model.onnx"), encodeModel(model));
  execFileSync("sh", [
    "-c",
    `head -c ${cut} "$0" > "$1" && tail -c +${cut + 1} "$0" > "$2"`,
    join(big, "onnx", DATA),
    join(split, "onnx", DATA),
    join(split, "onnx/second.bin"),
  ]);

  const rows = writeJsonl(
    join(tmp, "rows.jsonl"),
    Array.from({ length: 4 }, (_, i) => ({
      prompt: `Count to ${i + 2}.`,
      response: `${Array.from({ length: i + 2 }, (_, k) => k + 1).join(" ")}.`,
    })),
  );
  const score = async (dir: string) => {
    const out = join(tmp, `${dir === big ? "big" : "split"}.arrow`);
    const r = runCli(["score", "--data", rows, "--model", dir, "--out", out, "--levels", "2"]);
    expect(r.status, r.stderr).toBe(0);
    return (await readScoresFile(out)).cols;
  };
  const [a, b] = [await score(big), await score(split)];
  rmSync(split, { recursive: true });
  expect([...a.status]).toEqual(["ok", "ok", "ok", "ok"]);
  a.losses.forEach((l, i) => {
    expect(Number.isFinite(l)).toBe(true);
    expect(Math.abs(l - b.losses[i]!), `loss ${i}`).toBeLessThan(1e-6);
  });
}, 900_000);
