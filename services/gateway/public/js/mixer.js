// The mixer's transport: one Web Audio clock drives every stem, sample-accurately — play, pause,
// seek, loop A–B, and tempo/transpose through one SoundTouch processor on the sum.
import { $, clock } from './util.js';

/**
 * The mixer's state. Times are in the stems' own seconds (0 at their first sample); `songStart`
 * is where they begin in the song (a preview's start), added wherever a time is shown.
 */
export const mixer = { open: false, job: null, ctx: null, stems: [], playing: false, offset: 0, when: 0, playFrom: 0, duration: 0, songStart: 0, raf: 0, loop: null, rate: 1, semitones: 0, bus: null, stretch: null };
window.stemflowMixer = mixer; // for the page's tests and the curious

/** A time of the stems shown as song time. */
export const songClock = (t) => clock(mixer.songStart + t);

// While playing: never before where it started (the sources start 50 ms after Play), never past the end;
// in a loop, the sources wrap at its end by themselves (AudioBufferSourceNode.loop), and so does the clock.
mixer.clock = () => {
  if (!mixer.playing) return mixer.offset;
  // From where playback started, at the tempo it plays at.
  const t = Math.max(mixer.playFrom, mixer.playFrom + mixer.rate * (mixer.ctx.currentTime - mixer.when));
  const l = mixer.loop;
  if (l?.on) return t >= l.b ? l.a + ((t - l.b) % (l.b - l.a)) : t;
  return Math.min(mixer.duration, t);
};

export function play() {
  if (!mixer.stems.length || !mixer.stems.every((s) => s.buffer)) return;
  mixer.ctx.resume();
  if (mixer.offset >= mixer.duration - 0.05) mixer.offset = 0;
  const l = mixer.loop?.on ? mixer.loop : null;
  if (l && (mixer.offset < l.a || mixer.offset >= l.b)) mixer.offset = l.a;
  const when = mixer.ctx.currentTime + 0.05; // one start time for every stem: sample-accurate sync
  for (const s of mixer.stems) {
    const src = mixer.ctx.createBufferSource();
    src.buffer = s.buffer;
    src.connect(s.meter);
    // The loop is the sources' own: they wrap at its end sample-accurately, all on the same frame.
    if (l) {
      src.loop = true;
      src.loopStart = l.a;
      src.loopEnd = l.b;
    }
    src.playbackRate.value = mixer.rate; // every stem at one rate: they stay on the same frames
    src.start(when, mixer.offset);
    s.source = src;
    s.startOffset = mixer.offset;
  }
  mixer.stems[0].source.onended = () => {
    if (mixer.playing && mixer.clock() >= mixer.duration - 0.05) {
      pause();
      mixer.offset = 0;
    }
  };
  mixer.when = when;
  mixer.playFrom = mixer.offset;
  mixer.playing = true;
  $('play').textContent = '❙❙ Pause';
  $('play').setAttribute('aria-label', 'Pause');
}

export function pause() {
  mixer.offset = mixer.clock();
  mixer.playing = false;
  for (const s of mixer.stems) {
    try {
      s.source?.stop();
    } catch {}
    s.source = null;
  }
  $('play').textContent = '▶ Play';
  $('play').setAttribute('aria-label', 'Play');
}

export function seek(t) {
  const was = mixer.playing;
  if (was) pause();
  mixer.offset = Math.max(0, Math.min(mixer.duration, t));
  // Jumping outside the loop leaves it (it stays drawn, off, for L to take up again).
  const l = mixer.loop;
  if (l?.on && (mixer.offset < l.a || mixer.offset >= l.b)) setLoop(l.a, l.b, false);
  if (was) play();
  tick(true);
}

/** The clock, the seek bar and the playheads, every frame while the mixer is open (or once). */
export function tick(once) {
  const t = mixer.clock();
  const text = `${songClock(t)} / ${songClock(mixer.duration)}`;
  if ($('time').textContent !== text) {
    $('time').textContent = text;
    $('seek').setAttribute('aria-valuetext', songClock(t));
  }
  if (document.activeElement !== $('seek')) $('seek').value = String(t);
  for (const s of mixer.stems) s.row.querySelector('.playhead').style.left = `${mixer.duration ? (t / mixer.duration) * 100 : 0}%`;
  if (!once) {
    cancelAnimationFrame(mixer.raf);
    if (mixer.open) mixer.raf = requestAnimationFrame(() => tick());
  }
}

/** Each stem's gain from its volume, mute and the solos. */
export function applyGains() {
  const solo = mixer.stems.some((s) => s.solo);
  for (const s of mixer.stems) {
    const audible = !s.mute && (!solo || s.solo);
    s.gain.gain.value = audible ? s.volume : 0;
    s.row.classList.toggle('silent', !audible);
  }
}

// ---- Loop A–B ----

/** A stretch to loop: [a, b) in seconds, on or off. Playing sources are restarted with it. */
export function setLoop(a, b, on = true) {
  // Paused first: the clock reads the position under the loop the sources were started with.
  const was = mixer.playing;
  if (was) pause();
  if (a == null || b == null || b - a < 0.05) mixer.loop = null;
  else mixer.loop = { a: Math.max(0, a), b: Math.min(mixer.duration, b), on };
  const l = mixer.loop;
  $('loop').disabled = !l;
  $('loop').setAttribute('aria-pressed', String(!!l?.on));
  $('loop').textContent = l ? `Loop ${songClock(l.a)}–${songClock(l.b)}` : 'Loop A–B';
  drawRegion(l);
  if (was) play();
}

/** The loop's stretch drawn over every waveform (faint while off), or removed. */
export function drawRegion(l) {
  for (const s of mixer.stems) {
    let r = s.row.querySelector('.region');
    if (!l) {
      r?.remove();
      continue;
    }
    if (!r) {
      r = document.createElement('div');
      r.className = 'region';
      s.row.querySelector('.wave').append(r);
    }
    r.style.left = `${(l.a / mixer.duration) * 100}%`;
    r.style.width = `${((l.b - l.a) / mixer.duration) * 100}%`;
    r.style.opacity = l.on ? '1' : '.35';
  }
}

/** [ sets the loop's start at the playhead, ] its end (keeping the other end where it makes sense). */
export function loopEdge(key) {
  const t = mixer.clock();
  const l = mixer.loop;
  if (key === '[') setLoop(t, l && l.b > t + 0.05 ? l.b : mixer.duration);
  else setLoop(l && l.a < t - 0.05 ? l.a : 0, t);
}

export const toggleLoop = () => {
  if (mixer.loop) setLoop(mixer.loop.a, mixer.loop.b, !mixer.loop.on);
};

// ---- Tempo and key ----

/**
 * Tempo and key for practising: every stem's source plays at the tempo (playbackRate: all stems on
 * the same frames, the loop and the clock in song time), and one SoundTouch processor on the sum
 * takes the pitch back to the song's key, plus the transposition. Without AudioWorklet (or if the
 * processor cannot load), the bus goes straight out and the controls are disabled.
 */
export async function practiceGraph() {
  if (mixer.bus) return;
  mixer.bus = mixer.ctx.createGain();
  try {
    await mixer.ctx.audioWorklet.addModule('/vendor/soundtouch-processor.js');
    mixer.stretch = new AudioWorkletNode(mixer.ctx, 'soundtouch-processor', { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [2], processorOptions: { sampleBufferType: 'circular' } });
    mixer.bus.connect(mixer.stretch);
    mixer.stretch.connect(mixer.ctx.destination);
  } catch (e) {
    mixer.stretch = null;
    mixer.bus.connect(mixer.ctx.destination);
    for (const id of ['tempo', 'transpose', 'practicereset']) $(id).disabled = true;
    $('practice').title = `tempo and transpose are unavailable in this browser (${e.message})`;
  }
  applyPractice();
}

function applyPractice() {
  if (mixer.stretch) {
    mixer.stretch.parameters.get('playbackRate').value = mixer.rate; // undoes the sources' pitch change
    mixer.stretch.parameters.get('pitchSemitones').value = mixer.semitones;
  }
  const pct = `${Math.round(mixer.rate * 100)} %`;
  $('tempoval').textContent = pct;
  $('tempo').setAttribute('aria-valuetext', pct);
  $('transposeval').textContent = `${mixer.semitones > 0 ? '+' : ''}${mixer.semitones} st`;
  $('transpose').setAttribute('aria-valuetext', `${mixer.semitones} semitones`);
}

/** A new tempo restarts the sources at the same song time (one start time, one rate for all). */
export function setTempo(rate) {
  const was = mixer.playing;
  if (was) pause();
  mixer.rate = Math.max(0.5, Math.min(1.5, rate));
  $('tempo').value = String(mixer.rate);
  applyPractice();
  if (was) play();
}

export function setTranspose(semitones) {
  mixer.semitones = semitones;
  $('transpose').value = String(semitones);
  applyPractice();
}
