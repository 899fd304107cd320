// A checkpoint's conversion into model.cache in its own process, as the first scoring run does it (hashing its
// files, then `model import-hf`): prints the converted folder, the wall time and peak RSS (VmHWM) as JSON.
import { performance } from "node:perf_hooks";
import { parseConfig } from "../src/config/load.js";
import { modelToScore } from "../src/run/model.js";
import { peakRssMiB } from "./peak-rss.js";

const config = parseConfig(JSON.parse(process.argv[2]!), "bench");
const t = performance.now();
const model = await modelToScore(config, () => {});
const seconds = (performance.now() - t) / 1000;
process.stdout.write(JSON.stringify({ path: model.path, seconds, maxRssMiB: peakRssMiB() }) + "\n");
