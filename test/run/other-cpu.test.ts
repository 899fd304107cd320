// Scores on another CPU: onnxruntime picks its kernels by instruction set (AVX-512, AVX2, SSE...), so another
// machine's scores differ in the last bits. qemu-user runs the CLI on an emulated CPU without AVX (Nehalem:
// SSE4.2 at most), so onnxruntime runs other kernels; the demo's first rows must still agree with the stored
// copy of test/run/demo.test.ts within its tolerance. `.ci/run` installs Debian's qemu-user.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tableFromIPC } from "apache-arrow";
import { expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";
import { tinyModel } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const QEMU = "/usr/bin/qemu-x86_64";
const hasQemu = spawnSync(QEMU, ["-cpu", "Nehalem", process.execPath, "-e", "0"]).status === 0;
const RTOL = 1e-5; // the demo test's
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

(hasQemu ? it : it.skip)(
  `the demo's scores on an emulated SSE4.2-only CPU agree with the stored copy within ${RTOL} relative${hasQemu ? "" : ` [skipped: no ${QEMU} that runs node (Debian's qemu-user; .ci/run installs it)]`}`,
  async () => {
    const tmp = tempDir();
    // The demo's model (configs/demo.yaml model.tiny) and its first 8 rows.
    const model = await tinyModel({ seed: 0, layers: 2, hidden: 64, heads: 4, kv_heads: 2, vocab: 512 });
    const data = join(tmp, "d.jsonl");
    const lines = readFileSync(join(ROOT, "datasets/demo.jsonl"), "utf8").split("\n").slice(0, 8);
    expect(lines).toHaveLength(8);
    writeFileSync(data, lines.join("\n") + "\n");
    const out = join(tmp, "sse.arrow");
    const r = spawnSync(
      QEMU,
      [
        "-cpu",
        "Nehalem",
        process.execPath,
        CLI,
        "score",
        "--data",
        data,
        "--model",
        model,
        "--out",
        out,
        "--template",
        "alpaca",
        "--set",
        "data.fields.id=id",
        "--set",
        "score.ifd=true",
        "--threads",
        "1",
      ],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    const table = tableFromIPC(readFileSync(out));
    const stored = (
      JSON.parse(readFileSync(join(ROOT, "test/run/demo-expected.json"), "utf8")) as { rows: Record<string, number | string>[] }
    ).rows.slice(0, 8);
    let bitwise = 0;
    for (const k of ["dlc", "loss0", "ifd"]) {
      const got = [...table.getChild(k)!].map(Number);
      got.forEach((v, i) => {
        const want = stored[i]![k] as number;
        expect(Math.abs(v - want), `row ${i} ${k}: ${v} vs ${want}`).toBeLessThanOrEqual(RTOL * Math.abs(want));
        if (v === want) bitwise++;
      });
    }
    console.warn(`other-cpu.test: ${bitwise} of 24 values bitwise equal to the stored copy (the rest within ${RTOL} relative)`);
  },
  600_000,
);
