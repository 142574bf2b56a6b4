/**
 * Flush-to-zero and denormals-are-zero for the calling thread, which a model's thread needs.
 *
 * Deep in htdemucs's transformer the attention's softmax makes probabilities below 2⁻¹²⁶ (a tenth
 * of them in the first layer's: its scores span 900), which float32 can only hold as denormals;
 * an x86 core computes with a denormal through a microcode assist, tens of times slower. With
 * the thread's MXCSR set to flush them (FTZ: results, DAZ: inputs), the first self-attention of a
 * run takes 127 instead of 1,272 ms and a whole fast run on one thread 3.1 instead of 4.6 s, its
 * outputs identical to the last bit on the material measured (those probabilities are 2⁻¹²⁶ of a
 * row that sums to 1: nothing float32 keeps).
 *
 * ONNX Runtime's own switch (`session.set_denormal_as_zero`) covers the threads of a session's
 * intra-op pool, and of the thread that runs it only where that session is the first created in
 * the process (a process-wide once); a separator's engines each run on their own worker thread,
 * and all but one would miss it. The MXCSR is per thread and neither JavaScript nor Node can
 * set it, so the thread sets its own through the C library's fenv (fegetenv/fesetenv), called
 * with koffi, and reads it back to say whether it took.
 *
 * For that thread only: JavaScript's numbers there lose their denormals too (Number.MIN_VALUE
 * reads as 0), which a model's thread, moving buffers and messages, never uses.
 */
import { createRequire } from 'node:module';
import type Koffi from 'koffi';

/** Where the flush bits live in glibc's fenv_t, per architecture (the control register's word). */
const LAYOUTS: Partial<Record<string, { size: number; offset: number; bits: number }>> = {
  // x86-64: the x87 environment (28 bytes), then MXCSR; FTZ is bit 15, DAZ bit 6.
  x64: { size: 32, offset: 28, bits: 0x8040 },
  // AArch64: FPCR then FPSR; FZ (flush denormals, results and inputs) is FPCR bit 24.
  arm64: { size: 8, offset: 0, bits: 1 << 24 },
};

type Fenv = { get: (env: Uint8Array) => number; set: (env: Uint8Array) => number };
let fenv: Fenv | null | undefined;

function bind(): Fenv | null {
  if (fenv !== undefined) return fenv;
  fenv = null;
  if (process.platform !== 'linux' || !LAYOUTS[process.arch]) return fenv;
  try {
    // Loaded here, not at import: a process that never flushes (the gateway, the decoder) never
    // loads the native binding, and one where it cannot load runs on unflushed.
    const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
    const libm = koffi.load('libm.so.6');
    fenv = { get: libm.func('int fegetenv(_Out_ uint8_t *env)'), set: libm.func('int fesetenv(const uint8_t *env)') };
  } catch {
    // koffi without a binary for this platform, or not glibc (musl has no libm.so.6): left as it is
  }
  return fenv;
}

/** The calling thread's floating-point environment and where its flush bits are, or undefined where it cannot be read. */
function current() {
  const f = bind();
  const l = LAYOUTS[process.arch];
  if (!f || !l) return undefined;
  const env = new Uint8Array(l.size);
  if (f.get(env) !== 0) return undefined;
  const view = new DataView(env.buffer);
  return { f, l, env, word: view.getUint32(l.offset, true), view };
}

/** Whether the calling thread flushes denormals to zero, or undefined where it cannot be read. */
export function flushesDenormals(): boolean | undefined {
  const c = current();
  return c && (c.word & c.l.bits) === c.l.bits;
}

/**
 * Makes the calling thread flush denormals to zero. Returns whether it does now; false where the
 * platform has no way this code knows (not Linux glibc on x86-64 or AArch64), the thread as it was.
 */
export function flushDenormals(): boolean {
  const c = current();
  if (!c) return false;
  c.view.setUint32(c.l.offset, (c.word | c.l.bits) >>> 0, true);
  c.f.set(c.env);
  return flushesDenormals() === true;
}
