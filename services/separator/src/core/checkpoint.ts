/**
 * The checkpoint format: one finished region of the track (every plane) and the overlap-add carry
 * that the next chunk continues from, in one binary object. A JSON header (padded to 4 bytes, so
 * the floats that follow can be read in place), then the region, the carry's remainder and its
 * weight sums as little-endian float32.
 */
import type { Carry } from './pass.js';
import { PLANES } from './pass.js';

export type Checkpoint = { k: number; start: number; length: number; data: Float32Array; carry: Carry };

export function encodeCheckpoint(k: number, region: { start: number; length: number; data: Float32Array }, carry: Carry): Buffer {
  const head = Buffer.from(JSON.stringify({ k, start: region.start, length: region.length, base: carry.base, remLen: carry.wsum.length }));
  const pad = (4 - ((head.length + 4) % 4)) % 4;
  const h = Buffer.alloc(4 + head.length + pad, 0x20);
  h.writeUInt32LE(head.length + pad, 0);
  head.copy(h, 4);
  const f = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  return Buffer.concat([h, f(region.data), f(carry.rem), f(carry.wsum)]);
}

export function decodeCheckpoint(buf: Buffer): Checkpoint {
  const hl = buf.readUInt32LE(0);
  const head = JSON.parse(buf.subarray(4, 4 + hl).toString()) as { k: number; start: number; length: number; base: number; remLen: number };
  // A view, not a copy (the header is padded to 4 bytes); copied only if the buffer is unaligned.
  const at = buf.byteOffset + 4 + hl;
  const body = at % 4 === 0 ? new Float32Array(buf.buffer, at, (buf.length - 4 - hl) / 4) : new Float32Array(buf.buffer.slice(at, buf.byteOffset + buf.length));
  const d = PLANES * head.length;
  const r = PLANES * head.remLen;
  return { ...head, data: body.subarray(0, d), carry: { base: head.base, rem: body.subarray(d, d + r), wsum: body.subarray(d + r, d + r + head.remLen) } };
}

