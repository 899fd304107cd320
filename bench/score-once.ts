// One scoring run in its own process, so its peak RSS is its own: prints the ScoreResult and peak RSS (VmHWM) as JSON.
import { parseConfig } from "../src/config/load.js";
import { scoreOnly } from "../src/run/score.js";
import { peakRssMiB } from "./peak-rss.js";

const config = parseConfig(JSON.parse(process.argv[2]!), "bench");
const result = await scoreOnly(config, { restart: true, log: () => {} });
process.stdout.write(JSON.stringify({ ...result, maxRssMiB: peakRssMiB() }) + "\n");
