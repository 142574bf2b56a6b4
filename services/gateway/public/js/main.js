// The page: a drop zone, a job card, the mixer and recent jobs. Each part is a module beside this one.
import { saveKey, showKeyState } from './api.js';
import { openFromUrl, upload } from './jobs.js';
import { onKey } from './keys.js';
import { toggleLive } from './live.js';
import { mixer, pause, play, seek, setTempo, setTranspose, toggleLoop } from './mixer.js';
import { loadRecent } from './recent.js';
import { wireMixDownloads } from './tracks.js';
import { $ } from './util.js';

$('savekey').onclick = () => {
  saveKey($('apikey').value.trim());
  $('apikey').value = '';
  loadRecent();
};
$('apikey').onkeydown = (e) => {
  if (e.key === 'Enter') $('savekey').click();
};

const drop = $('drop');
drop.onclick = () => $('file').click();
drop.onkeydown = (e) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    $('file').click();
  }
};
$('file').onchange = () => {
  if ($('file').files[0]) upload($('file').files[0]);
};
drop.ondragover = (e) => {
  e.preventDefault();
  drop.classList.add('over');
};
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
};

$('liveplay').onclick = toggleLive;
$('play').onclick = () => (mixer.playing ? pause() : play());
$('seek').oninput = (e) => seek(Number(e.currentTarget.value));
$('loop').onclick = toggleLoop;
$('tempo').oninput = (e) => setTempo(Number(e.currentTarget.value));
$('transpose').oninput = (e) => setTranspose(Number(e.currentTarget.value));
$('practicereset').onclick = () => {
  setTranspose(0);
  setTempo(1);
};
wireMixDownloads();
document.addEventListener('keydown', onKey);
window.addEventListener('hashchange', openFromUrl);

showKeyState();
loadRecent();
openFromUrl();
