// A job on the page: its upload, its progress as its event stream says it, its own link
// (#/jobs/{id}), cancel and delete.
import { api, auth, errorOf, showKeyState } from './api.js';
import { live, showLive, stopLive } from './live.js';
import { mixer } from './mixer.js';
import { loadRecent, updateRecent, setFollowed } from './recent.js';
import { closeMixer, openMixer } from './tracks.js';
import { $, fmtEta, isRunning } from './util.js';

/** The job options the form asks for, as the multipart fields of POST /api/jobs. */
function formFor(file) {
  const form = new FormData();
  form.append('file', file);
  if ($('stems').value === 'two') form.append('two_stems', 'vocals');
  form.append('format', $('format').value);
  if ($('quality').value) form.append('quality', $('quality').value);
  if ($('listen').checked) form.append('clip', 'clamp');
  if ($('residual').checked) form.append('residual', 'true');
  if ($('start').value) form.append('start', $('start').value);
  if ($('duration').value) form.append('duration', $('duration').value);
  return form;
}

/** Uploads a song with progress (XMLHttpRequest: fetch cannot report an upload's progress), then follows its job. */
export function upload(file) {
  const form = formFor(file);
  closeMixer();
  $('job').hidden = false;
  $('name').textContent = file.name;
  $('error').textContent = '';
  $('state').textContent = 'uploading';
  $('bar').value = 0;
  $('detail').textContent = '';
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/api/jobs');
  for (const [k, v] of Object.entries(auth())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable && e.total > 0) {
      $('bar').value = e.loaded / e.total;
      $('detail').textContent = `uploaded ${(e.loaded / 2 ** 20).toFixed(1)} of ${(e.total / 2 ** 20).toFixed(1)} MiB`;
    }
  };
  xhr.onload = () => {
    let body;
    try {
      body = JSON.parse(xhr.responseText);
    } catch {
      body = {};
    }
    if (xhr.status === 401) showKeyState('this server needs an API key: enter it above');
    if (xhr.status !== 201) {
      $('state').textContent = 'rejected';
      $('bar').value = 0;
      $('detail').textContent = '';
      $('error').textContent = body.detail ?? `HTTP ${xhr.status}`;
      return;
    }
    follow(body.id);
    loadRecent();
  };
  xhr.onerror = () => {
    $('error').textContent = 'the upload failed: is the server running?';
  };
  xhr.send(form);
}

/** A job's state in the job card (and its row in recent jobs). */
function show(job) {
  $('state').textContent = job.stage ? `${job.status} · ${job.stage}` : job.status;
  $('bar').value = job.progress;
  const imp = job.import && !job.import.done ? job.import : null;
  $('detail').textContent = imp
    ? `fetched ${(imp.received_bytes / 2 ** 20).toFixed(1)}${imp.total_bytes != null ? ' of ' + (imp.total_bytes / 2 ** 20).toFixed(1) : ''} MiB`
    : `${Math.round(job.progress * 100)} %${job.eta_sec != null ? ' · ' + fmtEta(job.eta_sec) : ''}`;
  $('error').textContent = job.status === 'failed' ? (job.error_message ?? 'the job failed') : '';
  $('cancel').hidden = !isRunning(job);
  $('cancel').onclick = () => cancelJob(job.id);
  showLive(job);
  updateRecent(job);
}

/** Reads Server-Sent Events from a response body, calling back with each (event, data, id). */
async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = 'message';
      let data = '';
      let id = null;
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trim();
        else if (line.startsWith('id:')) id = line.slice(3).trim();
      }
      if (onEvent(event, data, id) === false) return;
    }
  }
}

/** The job's Server-Sent Events, read with fetch (EventSource cannot send the API key); reconnects with Last-Event-ID. */
let following = null;
export async function follow(id) {
  showJobUrl(id);
  following?.abort();
  const ctl = new AbortController();
  following = ctl;
  setFollowed(id);
  let lastId = '';
  for (let tries = 0; tries < 30 && !ctl.signal.aborted; tries++) {
    try {
      const res = await api(`/api/jobs/${id}/events`, { headers: lastId ? { 'last-event-id': lastId } : {}, signal: ctl.signal });
      if (res.status === 204) return; // the page already has the job's last state
      if (!res.ok) {
        $('error').textContent = await errorOf(res);
        return;
      }
      let finished = false;
      await readEvents(res, (event, data, eventId) => {
        if (eventId) lastId = eventId;
        if (!data || event === 'message' || event === 'deleted') return true;
        const job = JSON.parse(data);
        const at = job.stems.length && !mixer.open ? stopLive() : undefined;
        show(job);
        if (job.stems.length && !mixer.open) openMixer(job, at);
        if (event === 'progress') return true;
        finished = true;
        loadRecent();
        return false;
      });
      if (finished) return;
    } catch {
      if (ctl.signal.aborted) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Opens a job (from the list or a link): its card, its mixer when it has stems, its stream while it runs. */
export function openJob(job) {
  $('job').hidden = false;
  $('name').textContent = job.filename;
  show(job);
  showJobUrl(job.id);
  if (job.stems.length) openMixer(job);
  else closeMixer();
  if (isRunning(job)) follow(job.id);
}

export async function cancelJob(id) {
  const res = await api(`/api/jobs/${id}/cancel`, { method: 'POST' });
  if (!res.ok && res.status !== 409) {
    $('error').textContent = await errorOf(res);
    return;
  }
  loadRecent();
}

export async function deleteJob(id) {
  const res = await api(`/api/jobs/${id}`, { method: 'DELETE' });
  if (!res.ok && res.status !== 404) {
    $('error').textContent = await errorOf(res);
    return;
  }
  if (mixer.job?.id === id || live.job?.id === id || location.hash === `#/jobs/${id}`) {
    following?.abort();
    setFollowed(null);
    stopLive();
    closeMixer();
    $('job').hidden = true;
    history.replaceState(null, '', location.pathname);
  }
  loadRecent();
}

// ---- Deep links: #/jobs/{id} opens that job, and survives a reload. ----
function showJobUrl(id) {
  if (location.hash !== `#/jobs/${id}`) history.replaceState(null, '', `#/jobs/${id}`);
}

export async function openFromUrl() {
  const m = /^#\/jobs\/([0-9a-f-]{36})$/i.exec(location.hash);
  if (!m) return;
  const res = await api(`/api/jobs/${m[1]}`);
  if (!res.ok) {
    $('job').hidden = false;
    $('name').textContent = '';
    $('state').textContent = '';
    $('error').textContent = `the job in this link: ${await errorOf(res)}`;
    return;
  }
  openJob(await res.json());
}
