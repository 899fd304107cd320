// onnxruntime-node sessions on the working weights, on CUDA when its provider loads (auto) or CPU.
//
// On the CPU one session serves every level: the maskable weights (and the other large float weights, the
// embedding and an untied head) are graph inputs, handed to onnxruntime without a copy on each run, so zeroing
// them in place changes the next run, and onnxruntime holds no second copy of them (nor a prepacked one). The
// CUDA provider would copy inputs to the device on every run, so there the weights are initializers, copied
// to the device once, and each level gets a new session.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import * as ort from "onnxruntime-node";
import type { ScoreConfig } from "../config/schema.js";
import { UserError } from "../util/errors.js";
import type { ScoringModel } from "../model/scoring-graph.js";

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
    const externalData = device === "cpu" ? model.fixed : [...model.fixed, ...fedWeights(model).map((w) => w.buffer)];
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
      await (await ort.InferenceSession.create(model.graphs.weightsAsInitializers, this.options(model, "cuda"))).release();
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
  async open(model: ScoringModel): Promise<LevelSession> {
    const device = await this.resolve(model);
    const create = async () => {
      const graph = device === "cpu" ? model.graphs.weightsAsInputs : model.graphs.weightsAsInitializers;
      try {
        return await ort.InferenceSession.create(graph, this.options(model, device));
      } catch (err) {
        throw new UserError(`${model.dir}: onnxruntime cannot load the model (${(err as Error).message.split("\n")[0]})`);
      }
    };
    return new LevelSession(await create(), device === "cpu" ? weightFeeds(model) : null, create);
  }
}

/** The weights the CPU graph takes as inputs: the maskable ones and the other large float ones. */
const fedWeights = (model: ScoringModel) => [...model.maskable, ...model.unmasked];

/** The fed weights as input tensors over their buffers (no copy made). */
function weightFeeds(model: ScoringModel): Record<string, ort.Tensor> {
  return Object.fromEntries(
    fedWeights(model).map((w) => [
      w.name,
      w.data instanceof Float32Array ? new ort.Tensor("float32", w.data, w.dims) : new ort.Tensor("float16", w.data, w.dims),
    ]),
  );
}

/** Runs batches on the working weights as they are when each run starts. */
export class LevelSession {
  constructor(
    private session: ort.InferenceSession,
    /** The weights fed on each run (CPU), or null when the session holds them (CUDA). */
    private readonly weights: Record<string, ort.Tensor> | null,
    private readonly create: () => Promise<ort.InferenceSession>,
  ) {}

  run(feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
    return this.session.run(this.weights ? { ...feeds, ...this.weights } : feeds);
  }

  /** The working weights were zeroed further: a session holding its own copy of them is replaced. */
  async weightsChanged(): Promise<void> {
    if (this.weights) return;
    await this.session.release();
    this.session = await this.create();
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
