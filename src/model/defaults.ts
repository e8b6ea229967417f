/**
 * The files the server uses when none are named: shared by the settings (their defaults) and the model
 * code (what the seed project's names mean), so config depends on model and never the reverse.
 */

/**
 * Q8_0: its vectors stay within 0.999 cosine of the fp32 model's (Q4_K_M's only 0.90), so indexes built
 * with fp32 vectors by the Python server keep working; README "Models" has the figures.
 */
export const DEFAULT_MODEL_URI = "hf:gpustack/bge-m3-GGUF/bge-m3-Q8_0.gguf";

/** The GGUF files lack BGE-M3's sparse and ColBERT heads; the authors' repository ships them as .pt files. */
export const DEFAULT_M3_HEADS = "hf:BAAI/bge-m3";
