/** Driving a running stemflow over HTTP as a client would: upload, follow SSE, decode stems. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createParser } from 'eventsource-parser';
import { expect } from 'vitest';
import { ffmpeg } from './audio.js';
import { makeSources, mixdown } from './mixture.js';

export type SseEvent = { event: string; data: any };

/** A generated song (espeak-ng voice over synthetic drums, bass and pads) as a 16-bit WAV. */
export async function mixtureWav(sec: number): Promise<{ wav: Buffer; frames: number }> {
  const frames = sec * 44100;
  const [l, r] = mixdown(makeSources(sec));
  const inter = new Float32Array(2 * frames);
  for (let i = 0; i < frames; i++) {
    inter[2 * i] = l[i]!;
    inter[2 * i + 1] = r[i]!;
  }
  const wav = await ffmpeg(['-f', 'f32le', '-ar', '44100', '-ac', '2', '-i', 'pipe:0', '-c:a', 'pcm_s16le', '-f', 'wav', '-'], Buffer.from(inter.buffer));
  return { wav, frames };
}

export async function uploadJob(api: string, file: { name: string; data: Buffer }, fields: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<string> {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  f.append('file', new Blob([new Uint8Array(file.data)], { type: 'audio/wav' }), file.name);
  const res = await fetch(`${api}/api/jobs`, { method: 'POST', body: f, headers });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Follows a job's SSE stream to its end; calls onEvent for each event. Parsed by the SSE rules
 * (eventsource-parser, as the CLI does): a `: keep-alive` comment is not an event. */
export async function followSse(api: string, id: string, onEvent?: (e: SseEvent) => void, headers: Record<string, string> = {}): Promise<SseEvent[]> {
  const res = await fetch(`${api}/api/jobs/${id}/events`, { headers });
  const events: SseEvent[] = [];
  const parser = createParser({
    onEvent: (m) => {
      const ev = { event: m.event ?? 'message', data: JSON.parse(m.data) };
      events.push(ev);
      onEvent?.(ev);
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) parser.feed(decoder.decode(chunk, { stream: true }));
  return events;
}

/** Stereo frames of an encoded file, decoded by ffmpeg. */
/** Interleaved stereo float samples of any audio file, decoded by ffmpeg (independently of stemflow). */
export const decodedF32 = (bytes: Buffer): Float32Array => {
  // From a file, not a pipe: ffmpeg trims an mp3's encoder delay and padding only when it can seek.
  const file = join(mkdtempSync(join(tmpdir(), 'dec-')), 'audio');
  writeFileSync(file, bytes);
  try {
    const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'f32le', '-ac', '2', '-'], { maxBuffer: 1 << 30 });
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  } finally {
    rmSync(dirname(file), { recursive: true, force: true });
  }
};
export const decodedFrames = (bytes: Buffer) => execFileSync('ffmpeg', ['-v', 'error', '-i', 'pipe:0', '-f', 'f32le', '-'], { input: bytes, maxBuffer: 1 << 28 }).length / 8;

/** The checks every end-to-end flow makes of a finished job's SSE stream and stems. */
export async function expectFourStems(api: string, events: SseEvent[], frames: number, headers: Record<string, string> = {}) {
  const last = events.at(-1)!;
  expect(last.event, JSON.stringify(last.data)).toBe('completed');
  expect(new Set(events.map((e) => e.data.stage)).has('separating')).toBe(true);
  const progress = events.map((e) => e.data.progress as number);
  expect(progress).toEqual([...progress].sort((a, b) => a - b));
  expect(last.data.stems.map((s: { name: string }) => s.name)).toEqual(['drums', 'bass', 'other', 'vocals']);
  for (const s of last.data.stems as { name: string; url: string }[]) {
    const res = await fetch(`${api}${s.url}`, { headers }); // a presigned S3 URL is followed
    expect(res.status, `${s.url}: ${await res.clone().text().catch(() => '')}`).toBe(200);
    expect(decodedFrames(Buffer.from(await res.arrayBuffer())), s.name).toBe(frames);
  }
}
