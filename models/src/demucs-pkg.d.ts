// The `demucs` npm package ships plain JS; these are the parts tests and benchmarks compare with.
declare module 'demucs/dist/dsp.js' {
  type T = { data: Float32Array; shape: number[] };
  export function spec(x: T): { real: T; imag: T };
  export function ispec(z: { real: T; imag: T }, length: number): T;
}
declare module 'demucs/dist/onnx-htdemucs.js' {
  export class ONNXHTDemucs {
    static init(weights: string | Uint8Array): Promise<ONNXHTDemucs>;
    session: import('onnxruntime-node').InferenceSession;
  }
}
declare module 'demucs/dist/apply.js' {
  export function separateTracks(
    model: unknown,
    audio: { channelData: Float32Array[]; sampleRate: number },
    onProgress?: (done: number, total: number) => void,
    overlap?: number,
  ): Promise<Record<'drums' | 'bass' | 'other' | 'vocals', { channelData: Float32Array[]; sampleRate: number }>>;
}
