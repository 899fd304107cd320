// onnxruntime-node sessions: one per masking level, built from the patched weights, on CUDA when its
// provider loads (auto) or CPU.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import * as ort from "onnxruntime-node";
import type { ScoreConfig } from "../config/schema.js";
import { UserError } from "../util/errors.js";
import { FIXED_FILE, MASKABLE_FILE, type ScoringModel } from "../model/scoring-graph.js";

/** The onnxruntime-node that scores (recorded with the scores). */
export const ONNXRUNTIME_VERSION: string = ort.env.versions.node ?? "unknown";

export type DeviceChoice = ScoreConfig["device"];
export type Device = Exclude<DeviceChoice, "auto">;

/** onnxruntime-node ships the CPU provider; the CUDA one is an optional install (see README "GPU"). */
function cudaProviderInstalled(): boolean {
  const pkg = createRequire(import.meta.url).resolve("onnxruntime-node/package.json");
  return existsSync(join(dirname(pkg), "bin", "napi-v6", process.platform, process.arch, "libonnxruntime_providers_cuda.so"));
}

const threadsOf = (n: number) => `${n} thread${n === 1 ? "" : "s"}`;

export function threadCount(configured: number): number {
  return configured > 0 ? configured : availableParallelism();
}

export class SessionFactory {
  private device: Device | undefined;

  constructor(
    private readonly choice: DeviceChoice,
    /** onnxruntime's intra-op threads. */
    readonly threads: number,
    private readonly log: (line: string) => void,
  ) {}

  private options(model: ScoringModel, device: Device): ort.InferenceSession.SessionOptions {
    const externalData = [{ path: MASKABLE_FILE, data: model.maskableBlob }];
    if (model.fixedBlob.byteLength) externalData.push({ path: FIXED_FILE, data: model.fixedBlob });
    return {
      executionProviders: [device],
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
      logSeverityLevel: 3,
      externalData,
    };
  }

  /**
   * Settles the device once, with one log line: CUDA when asked or (auto) when its provider is installed
   * and a session loads on it, else CPU. Scores depend on the device, so it is settled before the run's
   * identity is taken.
   */
  async resolve(model: ScoringModel): Promise<Device> {
    if (this.device) return this.device;
    if (this.choice === "cuda" && !cudaProviderInstalled())
      throw new UserError(
        `score.device cuda: onnxruntime's CUDA provider is not installed (see README "GPU"), or use score.device cpu or auto`,
      );
    if (this.choice === "cpu" || (this.choice === "auto" && !cudaProviderInstalled())) {
      this.log(
        `device: cpu, ${threadsOf(this.threads)}${this.choice === "auto" ? ' (onnxruntime\'s CUDA provider is not installed; see README "GPU")' : ""}`,
      );
      return (this.device = "cpu");
    }
    try {
      await (await ort.InferenceSession.create(model.graph, this.options(model, "cuda"))).release();
      this.log("device: cuda");
      return (this.device = "cuda");
    } catch (err) {
      const reason = (err as Error).message.split("\n")[0];
      if (this.choice === "cuda") throw new UserError(`score.device cuda: onnxruntime's CUDA provider did not load (${reason})`);
      this.log(`device: cpu, ${threadsOf(this.threads)} (the CUDA provider did not load: ${reason})`);
      return (this.device = "cpu");
    }
  }

  /** A session over the working weights as they are now, on the settled device. */
  async create(model: ScoringModel): Promise<ort.InferenceSession> {
    const options = this.options(model, await this.resolve(model));
    try {
      return await ort.InferenceSession.create(model.graph, options);
    } catch (err) {
      throw new UserError(`${model.dir}: onnxruntime cannot load the model (${(err as Error).message.split("\n")[0]})`);
    }
  }
}
