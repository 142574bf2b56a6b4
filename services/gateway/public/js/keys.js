// The keyboard, as the hint under the mixer says it.
import { mixer, pause, play, seek, loopEdge } from './mixer.js';
import { $ } from './util.js';

export function onKey(e) {
  if (!mixer.open || e.altKey || e.ctrlKey || e.metaKey) return;
  const t = e.target;
  const typing = (t instanceof HTMLInputElement && t.type !== 'range') || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
  if (typing) return;
  const arrow = e.key === 'ArrowRight' || e.key === 'ArrowLeft';
  const slider = t instanceof HTMLInputElement && t.type === 'range' && t !== $('seek');
  if (arrow && slider) return; // a volume, tempo or transpose slider's own
  // M and S act on the track whose control has the focus.
  const row = t instanceof Element ? t.closest('.track') : null;
  const key = e.key.toLowerCase();
  if (row && (key === 'm' || key === 's')) {
    e.preventDefault();
    row.querySelector(key === 'm' ? '.mute' : '.solo').click();
    return;
  }
  if (t instanceof HTMLButtonElement && e.key === ' ') return; // a button focused from the keyboard takes Space itself (a clicked one is not left focused)
  if (e.key === '[' || e.key === ']') {
    e.preventDefault();
    loopEdge(e.key);
    return;
  }
  if (key === 'l' && !row) {
    e.preventDefault();
    $('loop').click();
    return;
  }
  if (e.key === ' ') {
    e.preventDefault();
    if (mixer.playing) pause();
    else play();
  } else if (arrow) {
    e.preventDefault();
    seek(mixer.clock() + (e.key === 'ArrowRight' ? 5 : -5)); // the seek bar too: 5 s, not its step
  }
}
