/**
 * File names a client chose, made safe to show, store and download under.
 */

/** Longest file name kept, in UTF-8 bytes (what file systems and zip tools allow). */
export const MAX_NAME_BYTES = 255;

/**
 * Characters removed from names: controls (C0, DEL, C1), bidirectional overrides and isolates
 * (U+202A–U+202E, U+2066–U+2069: "song\u202Eevil.mp3" would display reversed), directional
 * marks, line/paragraph separators and the BOM.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

/** Cuts a string to at most `max` UTF-8 bytes, on a grapheme boundary (no half emoji or accent). */
export function cutUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  let bytes = 0;
  for (const { segment } of new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(s)) {
    const b = Buffer.byteLength(segment);
    if (bytes + b > max) break;
    out += segment;
    bytes += b;
  }
  return out;
}

/**
 * Makes a client-supplied file name safe to show, to store in a record and to use in a download's
 * name: no directories, no traversal, no control or bidi characters, at most 255 UTF-8 bytes (the
 * extension kept when the name is cut); unicode letters are kept.
 */
export function safeFileName(name: string | undefined): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base.normalize('NFC').replace(UNSAFE, '').replace(/^\.+/, '').trim();
  if (!cleaned) return 'upload';
  const dot = cleaned.lastIndexOf('.');
  const ext = dot > 0 && Buffer.byteLength(cleaned) - Buffer.byteLength(cleaned.slice(0, dot)) <= 16 ? cleaned.slice(dot) : '';
  const stem = cutUtf8(cleaned.slice(0, cleaned.length - ext.length), MAX_NAME_BYTES - Buffer.byteLength(ext)).trim();
  return stem ? stem + ext : 'upload';
}
