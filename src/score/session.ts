// onnxruntime-node sessions: one per masking level, built from the patched weights, on CUDA when its
// provider loads (auto) or CPU.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import * as ort from "onnxruntime-node";
import { UserError } from "../util/errors.js";
import { FIXED_FILE, MASKABLE_FILE, type ScoringModel } from "../model/scoring-graph.js";

export type DeviceChoice = "auto" | "cpu" | "cuda";
export type Device = "cpu" | "cuda";

/** onnxruntime-node ships the CPU provider; the CUDA one is an optional install (see README "GPU"). */
function cudaProviderInstalled(): boolean {
  const pkg = createRequire(import.meta.url).resolve("onnxruntime-node/package.json");
  return existsSync(join(dirname(pkg), "bin", "napi-v6", process.platform, process.arch, "libonnxruntime_providers_cuda.so"));
}

export function threadCount(configured: number): number {
  return configured > 0 ? configured : availableParallelism();
}

export class SessionFactory {
  private device: Device | undefined;

  constructor(
    private readonly choice: DeviceChoice,
    private readonly threads: number,
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

  /** A session over the working weights as they are now. The first call settles the device (one log line). */
  async create(model: ScoringModel): Promise<ort.InferenceSession> {
    if (!this.device) {
      if (this.choice === "cpu" || (this.choice === "auto" && !cudaProviderInstalled())) {
        this.device = "cpu";
        this.log(`device: cpu, ${this.threads} threads${this.choice === "auto" ? " (onnxruntime's CUDA provider is not installed; see README \"GPU\")" : ""}`);
      } else {
        try {
          const session = await ort.InferenceSession.create(model.graph, this.options(model, "cuda"));
          this.device = "cuda";
          this.log("device: cuda");
          return session;
        } catch (err) {
          const reason = (err as Error).message.split("\n")[0];
          if (this.choice === "cuda") throw new UserError(`--device cuda: onnxruntime's CUDA provider did not load (${reason})`);
          this.device = "cpu";
          this.log(`device: cpu, ${this.threads} threads (the CUDA provider did not load: ${reason})`);
        }
      }
    }
    return ort.InferenceSession.create(model.graph, this.options(model, this.device));
  }

  get resolved(): Device | undefined {
    return this.device;
  }
}
