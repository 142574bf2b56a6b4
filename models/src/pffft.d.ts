// PFFFT compiled to WebAssembly (@echogarden/pffft-wasm ships plain JS): what stemflow calls.
declare module '@echogarden/pffft-wasm/simd' {
  export type PffftModule = {
    readonly HEAPF32: Float32Array;
    /** N points; 0 = real, 1 = complex. */
    _pffft_new_setup(n: number, transform: 0 | 1): number;
    /** Pointers into the module's memory; direction 0 = forward, 1 = backward (not scaled by 1/N). */
    _pffft_transform_ordered(setup: number, input: number, output: number, work: number, direction: 0 | 1): void;
    _pffft_aligned_malloc(bytes: number): number;
  };
  export default function PFFFT(): Promise<PffftModule>;
}
