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

/**
 * Whether the model is ready. The server listens before the model is loaded (so /health can say
 * 503 while a download runs); routes that need the model ask here.
 */
export class ServiceState {
  private service: ReadyService | undefined;
  private stopping = false;

  get current(): ReadyService | undefined {
    return this.stopping ? undefined : this.service;
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  markReady(service: ReadyService): void {
    this.service = service;
  }

  markStopping(): void {
    this.stopping = true;
  }
}
