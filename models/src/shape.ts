/**
 * The model's shape and the signal processing around it, without ONNX Runtime (so the gateway
 * and the decoder can plan a job's cost without loading it): what demucs's apply.py reads from the
 * model — segment, sample rate, channels, sources, the STFT — declared once in the manifest, the
 * host-side STFT built on it, and the chunk plan and cost rule.
 */
export { HTDEMUCS, HTDEMUCS_FAST, MODELS, type ModelManifest, type Quality } from './manifest.js';
export * from './dsp.js';
export * from './plan.js';
