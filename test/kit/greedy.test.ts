// The imported stories260K reproduces llama2.c's documented greedy continuation under onnxruntime-node.
import { basename, dirname, join } from "node:path";
import { AutoTokenizer, env } from "@huggingface/transformers";
import * as ort from "onnxruntime-node";
import { expect, it } from "vitest";
import { emptyPast, i64, pastFrom, readFolderConfig } from "../helpers/onnx-llama.js";
import { describeWithShared } from "../helpers/shared.js";
import { storiesModel } from "../helpers/fixtures.js";

const EXPECTED =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.";

describeWithShared("imported stories260K", () => {
  it("greedy-decodes the documented text from 'Once upon a time' (KV cache)", async () => {
    const dir = await storiesModel();
    env.allowRemoteModels = false;
    env.localModelPath = dirname(dir);
    const tokenizer = await AutoTokenizer.from_pretrained(basename(dir), { local_files_only: true });
    const cfg = readFolderConfig(dir);
    const session = await ort.InferenceSession.create(join(dir, "onnx/model.onnx"));

    const ids = tokenizer.encode("Once upon a time");
    let next = ids;
    let past = emptyPast(cfg, 1);
    let text = "";
    while (text.length < EXPECTED.length && ids.length < 200) {
      const start = ids.length - next.length;
      const out = await session.run({
        input_ids: i64(next, [1, next.length]),
        attention_mask: i64(
          ids.map(() => 1),
          [1, ids.length],
        ),
        position_ids: i64(
          next.map((_, i) => start + i),
          [1, next.length],
        ),
        ...past,
      });
      const logits = (out.logits as ort.Tensor).data as Float32Array;
      const last = logits.subarray((next.length - 1) * cfg.vocab_size, next.length * cfg.vocab_size);
      let best = 0;
      for (let v = 1; v < last.length; v++) if (last[v]! > last[best]!) best = v;
      ids.push(best);
      next = [best];
      past = pastFrom(out, cfg);
      text = tokenizer.decode(ids, { skip_special_tokens: true });
    }
    expect(text.slice(0, EXPECTED.length)).toBe(EXPECTED);
    await session.release();
  });
});
