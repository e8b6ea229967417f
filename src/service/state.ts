import type { EmbeddingPipeline } from "../embedding/pipeline.js";
import type { AttentionPrecision, DeviceName, EngineName } from "../engine/types.js";

export interface ReadyService {
  readonly pipeline: EmbeddingPipeline;
  readonly engine: EngineName;
  readonly device: DeviceName;
  /** What attention's products run on (ATTENTION_PRECISION as resolved); absent where the engine does not choose. */
  readonly attention?: AttentionPrecision;
  /** Unix seconds: when the served model file was made (shown as `created` in /v1/models). */
  readonly createdAt: number;
}

/** What start-up is doing while the model is not ready, for /health. */
export interface LoadingStep {
  /** "finding the model file", "downloading the model", "loading the model into memory"... */
  readonly step: string;
  /** Of the file being downloaded. */
  readonly percent?: number;
  /** Why a download waits to try again. */
  readonly detail?: string;
}

/**
 * Whether the model is ready. The server listens before the model is loaded (so /health can say
 * 503 while a download runs); routes that need the model ask here.
 */
export class ServiceState {
  private service: ReadyService | undefined;
  private stopping = false;
  private loadingStep: LoadingStep = { step: "starting" };

  get current(): ReadyService | undefined {
    return this.stopping ? undefined : this.service;
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** What loading is doing now (while `current` is undefined). */
  get loading(): LoadingStep {
    return this.loadingStep;
  }

  setLoadingStep(step: LoadingStep): void {
    this.loadingStep = step;
  }

  markReady(service: ReadyService): void {
    this.service = service;
  }

  markStopping(): void {
    this.stopping = true;
  }
}
