/**
 * A 20 s song-like mixture made from known sources, for separation tests: drums (kick and hats),
 * bass (a saw line), other (decaying chords), and a voice spoken by espeak-ng. Sources are panned
 * differently, so the two channels are not the same.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SR = 44100;
export type Stereo = [Float32Array, Float32Array];
export type Sources = { drums: Stereo; bass: Stereo; other: Stereo; vocals: Stereo };

function noise(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

/** espeak-ng speech at 44.1 kHz mono, repeated to `frames`. */
export function speech(frames: number, text = 'stemflow separates every song into drums, bass, other and vocals, chunk by chunk, and tells you how far along it is.'): Float32Array {
  const dir = mkdtempSync(join(tmpdir(), 'voice-'));
  try {
    execFileSync('espeak-ng', ['-s', '150', '-p', '60', '-w', join(dir, 'v.wav'), text]);
    const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', join(dir, 'v.wav'), '-ac', '1', '-ar', String(SR), '-f', 'f32le', '-'], { maxBuffer: 1 << 28 });
    const one = new Float32Array(pcm.buffer, pcm.byteOffset, pcm.byteLength / 4);
    const out = new Float32Array(frames);
    for (let i = 0; i < frames; i++) out[i] = one[i % one.length]! * 0.8;
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function makeSources(sec = 20): Sources {
  const n = sec * SR;
  const beat = Math.round(SR * 0.5); // 120 bpm
  const rnd = noise(7);
  const drums = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = (i % beat) / SR;
    const kick = Math.sin(2 * Math.PI * (50 * t + 60 * (1 - Math.exp(-t * 30)) / 30)) * Math.exp(-t * 12);
    const h = ((i + beat / 2) % beat) / SR;
    const hat = rnd() * Math.exp(-h * 60) * 0.3;
    drums[i] = 0.7 * kick + hat;
  }
  const bass = new Float32Array(n);
  const notes = [41.2, 41.2, 55, 49];
  for (let i = 0; i < n; i++) {
    const bar = Math.floor(i / (beat * 2)) % notes.length;
    const f = notes[bar]!;
    const t = (i % (beat / 2)) / SR;
    let v = 0;
    for (let k = 1; k <= 8; k++) v += Math.sin(2 * Math.PI * f * k * (i / SR)) / k;
    bass[i] = 0.35 * v * (0.4 + 0.6 * Math.exp(-t * 4));
  }
  const other = new Float32Array(n);
  const chords = [[261.6, 329.6, 392], [220, 261.6, 329.6], [174.6, 220, 261.6], [196, 246.9, 293.7]];
  for (let i = 0; i < n; i++) {
    const bar = Math.floor(i / (beat * 4)) % chords.length;
    const t = (i % (beat * 4)) / SR;
    let v = 0;
    for (const f of chords[bar]!) for (let k = 1; k <= 4; k++) v += Math.sin(2 * Math.PI * f * k * (i / SR)) / (k * k);
    other[i] = 0.12 * v * Math.exp(-t * 1.2);
  }
  const voice = speech(n);
  const pan = (x: Float32Array, l: number, r: number): Stereo => [x.map((v) => v * l), x.map((v) => v * r)];
  return { drums: pan(drums, 0.9, 0.7), bass: pan(bass, 0.8, 0.8), other: pan(other, 0.5, 0.95), vocals: pan(voice, 0.85, 0.75) };
}

export function mixdown(s: Sources): Stereo {
  const n = s.drums[0].length;
  const l = new Float32Array(n), r = new Float32Array(n);
  for (const src of [s.drums, s.bass, s.other, s.vocals]) for (let i = 0; i < n; i++) { l[i] = l[i]! + src[0][i]!; r[i] = r[i]! + src[1][i]!; }
  return [l, r];
}

/** Signal-to-distortion ratio (dB) of an estimate, over both channels, from sample `from`. */
export function sdr(ref: Stereo, est: Stereo, from = 0): number {
  let p = 0, e = 0;
  for (const c of [0, 1] as const) for (let i = from; i < ref[c].length; i++) { p += ref[c][i]! ** 2; e += (ref[c][i]! - est[c][i]!) ** 2; }
  return 10 * Math.log10(p / e);
}

/** SNR (dB) of one channel against a reference channel, from sample `from`. */
export function snr(ref: Float32Array, est: Float32Array, from = 0): number {
  let p = 0, e = 0;
  for (let i = from; i < ref.length; i++) { p += ref[i]! ** 2; e += (ref[i]! - est[i]!) ** 2; }
  return 10 * Math.log10(p / e);
}
