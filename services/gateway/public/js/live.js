// Listening while it separates: each stem's WAV read as it grows, played on the mixer's clock.
import { api, errorOf } from './api.js';
import { mixer } from './mixer.js';
import { $, clock, esc } from './util.js';

export const live = { job: null, stems: [], playing: false, pos: 0, rate: 44100, total: 0, nextTime: 0, timer: 0, startedAt: 0, startPos: 0, songStart: 0 };
window.stemflowLive = live;

/** Where listening is: the stretch scheduled so far, as the shared clock plays it (nothing before the first stretch starts). */
live.time = () => (live.playing ? Math.min(live.pos / live.rate, Math.max(live.startPos / live.rate, live.startPos / live.rate + (mixer.ctx.currentTime - live.startedAt))) : live.pos / live.rate);

const wav = (job) => job.live_stems[0].format !== 'flac' && job.live_stems[0].format !== 'mp3';

/** The listen controls for a job's state: offered while it runs with WAV stems, or why not. */
export function showLive(job) {
  const streaming = job.status === 'processing' && job.live_stems?.length;
  const can = streaming && wav(job);
  const why = streaming && !can ? `Listening while it separates needs WAV stems; this job writes ${job.live_stems[0].format}: its stems play here when it completes.` : '';
  $('livewhy').hidden = !why;
  $('livewhy').textContent = why;
  $('live').hidden = !can && !live.playing;
  if (!can) return;
  live.songStart = job.options?.start ?? 0;
  $('liveready').textContent = `${clock(live.songStart + (job.ready_sec ?? 0))} ready`;
  if (live.job?.id === job.id) return;
  stopLive();
  live.job = job;
  // Pressed means muted, and says so.
  $('livestems').innerHTML = job.live_stems.map((s) => `<button type="button" class="livemute" aria-pressed="false" data-stem="${esc(s.name)}" aria-label="Mute ${esc(s.name)}" title="Mute ${esc(s.name)}">${esc(s.name)}</button>`).join(' ');
  for (const b of $('livestems').querySelectorAll('button')) {
    b.onclick = (e) => {
      const on = e.currentTarget.getAttribute('aria-pressed') !== 'true';
      e.currentTarget.setAttribute('aria-pressed', String(on));
      const st = live.stems.find((x) => x.name === e.currentTarget.dataset.stem);
      if (st) st.gain.gain.value = on ? 0 : 1;
    };
  }
}

/** Reads one stem's growing WAV: the header says its length; samples land in place as they come. */
async function readLiveStem(stem, signal) {
  const res = await api(stem.url, { signal });
  if (!res.ok) throw new Error(await errorOf(res));
  const reader = res.body.getReader();
  let head = new Uint8Array(0);
  let dataAt = -1;
  let fmt = null;
  let carry = new Uint8Array(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    let chunk = value;
    if (dataAt < 0) {
      const h = new Uint8Array(head.length + chunk.length);
      h.set(head);
      h.set(chunk, head.length);
      head = h;
      const v = new DataView(head.buffer);
      for (let at = 12; at + 8 <= head.length; at += 8 + v.getUint32(at + 4, true)) {
        const id = String.fromCharCode(...head.subarray(at, at + 4));
        if (id === 'fmt ') fmt = { rate: v.getUint32(at + 12, true), bits: v.getUint16(at + 22, true), float: v.getUint16(at + 8, true) === 3 || (v.getUint16(at + 8, true) === 0xfffe && v.getUint32(at + 32, true) === 3) };
        if (id === 'data') {
          dataAt = at + 8;
          stem.frames = v.getUint32(at + 4, true) / (fmt.bits / 4);
          break;
        }
      }
      if (dataAt < 0) continue;
      live.rate = fmt.rate;
      live.total = stem.frames;
      stem.l = new Float32Array(stem.frames);
      stem.r = new Float32Array(stem.frames);
      stem.have = 0;
      chunk = head.subarray(dataAt);
    }
    const all = new Uint8Array(carry.length + chunk.length);
    all.set(carry);
    all.set(chunk, carry.length);
    const B = fmt.bits / 8;
    const frame = 2 * B;
    const n = Math.floor(all.length / frame);
    const v = new DataView(all.buffer, all.byteOffset);
    for (let i = 0; i < n && stem.have < stem.frames; i++, stem.have++) {
      for (let c = 0; c < 2; c++) {
        const at = i * frame + c * B;
        const x = fmt.float ? v.getFloat32(at, true) : B === 2 ? v.getInt16(at, true) / 32768 : (v.getUint8(at) | (v.getUint8(at + 1) << 8) | (v.getInt8(at + 2) << 16)) / 8388608;
        (c ? stem.r : stem.l)[stem.have] = x;
      }
    }
    carry = all.slice(n * frame);
  }
}

/** Schedules the next stretch that every stem has, on one start time per stretch (sample-accurate). */
function scheduleLive() {
  if (!live.playing) return;
  const ready = Math.min(...live.stems.map((s) => s.have ?? 0));
  const ahead = live.nextTime - mixer.ctx.currentTime;
  if (ready > live.pos && ahead < 1) {
    const n = Math.min(ready - live.pos, Math.round(live.rate * 2));
    const when = Math.max(live.nextTime, mixer.ctx.currentTime + 0.05);
    if (when > live.nextTime + 0.01) {
      // caught up with the separation: resume from here
      live.startedAt = when;
      live.startPos = live.pos;
    }
    for (const s of live.stems) {
      const buf = mixer.ctx.createBuffer(2, n, live.rate);
      buf.copyToChannel(s.l.subarray(live.pos, live.pos + n), 0);
      buf.copyToChannel(s.r.subarray(live.pos, live.pos + n), 1);
      const src = mixer.ctx.createBufferSource();
      src.buffer = buf;
      src.connect(s.meter);
      src.start(when);
      s.sources.push(src);
    }
    live.pos += n;
    live.nextTime = when + n / live.rate;
  }
  $('liveready').textContent = `${clock(live.songStart + live.time())} / ${clock(live.songStart + ready / live.rate)} ready`;
}

function startLive() {
  const job = live.job;
  mixer.ctx = mixer.ctx ?? new AudioContext();
  mixer.ctx.resume();
  const ctl = new AbortController();
  live.ctl = ctl;
  live.stems = job.live_stems.map((s) => {
    const gain = mixer.ctx.createGain();
    const meter = mixer.ctx.createAnalyser();
    meter.fftSize = 2048;
    meter.connect(gain);
    gain.connect(mixer.ctx.destination);
    const muted = $('livestems').querySelector(`[data-stem="${s.name}"]`)?.getAttribute('aria-pressed') === 'true';
    gain.gain.value = muted ? 0 : 1;
    const stem = { name: s.name, url: s.url, gain, meter, sources: [], have: 0 };
    readLiveStem(stem, ctl.signal).catch((e) => {
      if (!ctl.signal.aborted) $('error').textContent = `listening stopped: ${e.message}`;
    });
    return stem;
  });
  live.playing = true;
  live.pos = 0;
  live.nextTime = 0;
  live.startedAt = Infinity;
  live.startPos = 0;
  live.timer = setInterval(scheduleLive, 100);
  $('liveplay').textContent = '❙❙ Stop';
  $('liveplay').setAttribute('aria-label', 'Stop listening');
}

/** Stops listening; returns where it was (the mixer carries on from there). */
export function stopLive() {
  if (!live.playing) return undefined;
  const at = { time: live.time(), playing: true };
  live.playing = false;
  clearInterval(live.timer);
  live.ctl?.abort();
  for (const s of live.stems) {
    for (const src of s.sources) {
      try {
        src.stop();
      } catch {}
    }
  }
  live.stems = [];
  $('liveplay').textContent = '▶ Listen now';
  $('liveplay').setAttribute('aria-label', 'Listen now');
  return at;
}

export const toggleLive = () => (live.playing ? stopLive() : startLive());
