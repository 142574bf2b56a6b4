// The mixer's tracks: one row per stem (mute, solo, volume, its waveform, its download), the stems
// loaded into buffers, the quality report, and the mixes the server renders from them.
import { api, download, errorOf } from './api.js';
import { mixer, play, seek, setLoop, drawRegion, practiceGraph, applyGains, tick, pause } from './mixer.js';
import { $, clock, esc } from './util.js';

export function closeMixer() {
  if (mixer.playing) pause();
  setLoop(); // no loop: the button reset, the regions removed
  for (const s of mixer.stems) s.wave?.destroy();
  mixer.stems = [];
  mixer.open = false;
  mixer.offset = 0;
  $('mixer').hidden = true;
  $('tracks').innerHTML = '';
}

/** Samples per pixel for a width: the finest level the server has that gives at least one block per pixel. */
const levelFor = (frames, width) => [256, 512, 1024, 2048, 4096, 8192, 16384].reverse().find((l) => frames / l >= width) ?? 256;

function trackRow(job, s) {
  const row = document.createElement('div');
  row.className = 'track';
  row.dataset.stem = s.name;
  row.innerHTML = `<span class="name">${esc(s.name)}</span>
    <button type="button" class="mute" aria-pressed="false" aria-label="Mute ${esc(s.name)}">M</button>
    <button type="button" class="solo" aria-pressed="false" aria-label="Solo ${esc(s.name)}">S</button>
    <input type="range" class="volume" min="0" max="1.5" step="0.05" value="1" aria-label="${esc(s.name)} volume">
    <div class="wave" role="presentation"><div class="playhead"></div></div>
    <a href="#" class="dl" aria-label="download ${esc(s.name)}">download</a>`;
  const gain = mixer.ctx.createGain();
  const meter = mixer.ctx.createAnalyser();
  meter.fftSize = 2048;
  meter.connect(gain);
  gain.connect(mixer.bus); // source → meter → gain → bus → SoundTouch → out
  const stem = { name: s.name, url: s.url, format: s.format, row, gain, meter, volume: 1, mute: false, solo: false, buffer: null, source: null, startOffset: 0, wave: null };
  // A click does not leave the toggle focused: Space stays play/pause (the keyboard still toggles a focused one).
  for (const b of row.querySelectorAll('button')) b.onmousedown = (e) => e.preventDefault();
  row.querySelector('.mute').onclick = (e) => {
    stem.mute = !stem.mute;
    e.currentTarget.setAttribute('aria-pressed', String(stem.mute));
    applyGains();
  };
  row.querySelector('.solo').onclick = (e) => {
    stem.solo = !stem.solo;
    e.currentTarget.setAttribute('aria-pressed', String(stem.solo));
    applyGains();
  };
  row.querySelector('.volume').oninput = (e) => {
    stem.volume = Number(e.currentTarget.value);
    applyGains();
  };
  waveGestures(row.querySelector('.wave'));
  row.querySelector('.dl').onclick = (e) => {
    e.preventDefault();
    download(s.url, `${job.filename} - ${s.name}`);
  };
  return stem;
}

/** Opens a completed job's stems in the mixer; `resumeAt` carries on from listening while it separated. */
export async function openMixer(job, resumeAt) {
  closeMixer();
  showReport(job);
  mixer.open = true;
  mixer.job = job;
  mixer.songStart = job.options?.start ?? 0;
  mixer.ctx = mixer.ctx ?? new AudioContext();
  await practiceGraph();
  $('mixer').hidden = false;
  $('play').disabled = true;
  $('mixstate').textContent = 'loading the stems…';
  $('mixformat').value = job.stems[0]?.format ?? 'wav16';
  $('zip').onclick = (e) => {
    e.preventDefault();
    download(`/api/jobs/${job.id}/stems.zip`, `${job.filename} - stems.zip`);
  };
  mixer.stems = job.stems.map((s) => trackRow(job, s));
  for (const s of mixer.stems) $('tracks').append(s.row);
  mixer.duration = 0;
  try {
    await Promise.all(
      mixer.stems.map(async (stem) => {
        const res = await api(stem.url);
        if (!res.ok) throw new Error(await errorOf(res));
        stem.buffer = await mixer.ctx.decodeAudioData(await res.arrayBuffer());
        mixer.duration = Math.max(mixer.duration, stem.buffer.duration);
        await drawWave(stem);
      }),
    );
  } catch (e) {
    $('mixstate').textContent = `could not load the stems: ${e.message}`;
    return;
  }
  if (mixer.job !== job) return; // another job was opened meanwhile
  $('seek').max = String(mixer.duration);
  $('play').disabled = false;
  $('mixstate').textContent = '';
  applyGains();
  tick();
  if (resumeAt) {
    mixer.offset = Math.min(resumeAt.time, mixer.duration);
    if (resumeAt.playing) play();
  }
}

/** One stem's waveform, from the server's peaks at the level that fits its width (wavesurfer.js draws it). */
async function drawWave(stem) {
  const el = stem.row.querySelector('.wave');
  const frames = Math.round(stem.buffer.duration * 44100);
  const res = await api(`${stem.url}/peaks?samples_per_pixel=${levelFor(frames, el.clientWidth || 600)}`);
  if (!res.ok) throw new Error(await errorOf(res));
  const peaks = await res.json(); // audiowaveform JSON: min, max per block, 16-bit
  const scale = 2 ** (peaks.bits - 1);
  stem.wave = WaveSurfer.create({
    container: el,
    height: 64,
    waveColor: '#4b5563',
    progressColor: '#4b5563',
    cursorWidth: 0,
    interact: false,
    normalize: false,
    peaks: [Float32Array.from(peaks.data, (v) => v / scale)],
    duration: stem.buffer.duration,
  });
}

/** On a waveform: a click (or tap) jumps there; a drag across it chooses the stretch to loop. */
function waveGestures(el) {
  let from = null;
  const at = (e) => {
    const r = el.getBoundingClientRect();
    return Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)) * mixer.duration;
  };
  el.onpointerdown = (e) => {
    if (e.button !== 0) return;
    from = { x: e.clientX, t: at(e) };
    el.setPointerCapture(e.pointerId);
  };
  el.onpointermove = (e) => {
    if (from && Math.abs(e.clientX - from.x) > 4) {
      from.dragged = true;
      const t = at(e);
      drawRegion({ a: Math.min(from.t, t), b: Math.max(from.t, t), on: true });
    }
  };
  el.onpointerup = (e) => {
    if (!from) return;
    const t = at(e);
    const start = from;
    from = null;
    if (start.dragged) {
      setLoop(Math.min(start.t, t), Math.max(start.t, t));
      seek(mixer.loop ? mixer.loop.a : t);
    } else seek(t);
  };
  el.onpointercancel = () => {
    from = null;
    setLoop(mixer.loop?.a, mixer.loop?.b, mixer.loop?.on);
  };
}

/** The quality report of a finished job, in words. */
function showReport(job) {
  const r = job.report;
  if (!r) {
    $('report').textContent = '';
    return;
  }
  const db = (x) => (x <= -300 ? '−∞' : `${x.toFixed(1)}`);
  const stems = r.stems.map((s) => `${s.name} ${db(s.peak_db)} dBFS${s.gain < 1 ? ` (scaled ×${s.gain.toFixed(3)} to fit)` : s.peak > 0.99 ? ' (limited)' : ''}`).join(', ');
  $('report').textContent = `${+(r.sample_rate / 1000).toFixed(2)} kHz · ${clock(r.frames / r.sample_rate)} · song − Σ stems: ${db(r.residual_db)} dB${r.residual_db < -80 ? ' (they add up to the song)' : ''} · peaks: ${stems}`;
}

/** The mix as the mixer sounds now (or given), rendered by the server from the stems, at the mixer's tempo and key. */
function mixUrl(picks) {
  const gains = picks.filter((p) => p.gain !== 1).map((p) => `${p.name}:${p.gain}`).join(',');
  const q = new URLSearchParams({ stems: picks.map((p) => p.name).join(','), format: $('mixformat').value });
  if (gains) q.set('gains', gains);
  if (mixer.rate !== 1) q.set('tempo', String(mixer.rate));
  if (mixer.semitones) q.set('semitones', String(mixer.semitones));
  return `/api/jobs/${mixer.job.id}/mix?${q}`;
}

export function wireMixDownloads() {
  const currentPicks = () => mixer.stems.filter((s) => s.gain.gain.value > 0).map((s) => ({ name: s.name, gain: Math.round(s.gain.gain.value * 100) / 100 }));
  $('downloadmix').onclick = () => {
    const p = currentPicks();
    if (!p.length) {
      $('mixstate').textContent = 'every stem is silent';
      return;
    }
    download(mixUrl(p), `${mixer.job.filename} - mix`);
  };
  $('karaoke').onclick = () => download(mixUrl(mixer.stems.filter((s) => s.name !== 'vocals').map((s) => ({ name: s.name, gain: 1 }))), `${mixer.job.filename} - karaoke`);
}
