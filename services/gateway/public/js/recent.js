// Recent jobs: the followed job's row live from its event stream; the list read again every few
// seconds while another of its jobs runs, and now and then otherwise (jobs submitted elsewhere —
// another tab, the CLI, an integration — appear); open, cancel and delete from the list.
import { api, errorOf } from './api.js';
import { cancelJob, deleteJob, openJob } from './jobs.js';
import { $, age, esc, isRunning } from './util.js';

/** How often the list is read again: while a job in it runs that this page does not follow, and otherwise (while the page is seen). */
const RUNNING_MS = 3000;
const IDLE_MS = 10_000;
let followed = null;
let refresh = 0;

export const setFollowed = (id) => {
  followed = id;
};

const stateText = (j) => `${j.status}${j.stage ? ' · ' + j.stage : ''}${isRunning(j) ? ` · ${Math.round(j.progress * 100)} %` : ''}`;

function recentRow(j) {
  const tr = document.createElement('tr');
  tr.tabIndex = 0;
  tr.dataset.job = j.id;
  const stems = j.stems.length ? j.stems.map((s) => s.name).join(', ') + ' · ' + j.stems[0].format : '—';
  tr.innerHTML = `<td>${esc(j.filename)}</td><td class="st">${esc(stateText(j))}</td><td>${esc(stems)}</td><td>${age(j.created_at)}</td>
    <td>${isRunning(j) ? `<button type="button" class="cancel" aria-label="Cancel ${esc(j.filename)}">Cancel</button> ` : ''}<button type="button" class="delete" aria-label="Delete ${esc(j.filename)}">Delete</button></td>`;
  tr.onclick = (e) => {
    if (!(e.target instanceof HTMLButtonElement)) openJob(j);
  };
  tr.onkeydown = (e) => {
    if (e.key === 'Enter' && e.target === tr) openJob(j);
  };
  tr.querySelector('.cancel')?.addEventListener('click', () => cancelJob(j.id));
  tr.querySelector('.delete').onclick = () => deleteJob(j.id);
  return tr;
}

export async function loadRecent() {
  const res = await api('/api/jobs?limit=10');
  if (!res.ok) {
    $('recent').innerHTML = `<tr><td class="error" colspan="5">${esc(await errorOf(res))}</td></tr>`;
    clearTimeout(refresh);
    refresh = setTimeout(refreshRecent, IDLE_MS);
    return;
  }
  const { items } = await res.json();
  const focus = focused();
  $('recent').innerHTML = items.length ? '' : '<tr><td class="muted" colspan="5">none yet</td></tr>';
  for (const j of items) $('recent').append(recentRow(j));
  refocus(focus);
  clearTimeout(refresh);
  refresh = setTimeout(refreshRecent, items.some((j) => isRunning(j) && j.id !== followed) ? RUNNING_MS : IDLE_MS);
}

/** What has the keyboard's focus in the list (a row, or one of its buttons), to give it back after a refresh. */
function focused() {
  const el = document.activeElement;
  const tr = el?.closest?.('#recent tr[data-job]');
  return tr ? { job: tr.dataset.job, control: el === tr ? null : el.className } : null;
}
function refocus(f) {
  if (!f) return;
  const tr = $('recent').querySelector(`tr[data-job="${f.job}"]`);
  (f.control ? tr?.querySelector(`.${f.control}`) : tr)?.focus();
}

/** A scheduled read: skipped while the page is hidden (and done when it shows again). */
function refreshRecent() {
  if (document.visibilityState === 'visible') loadRecent();
}
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') loadRecent();
});

/** The followed job's row shows what its stream says, as it says it. */
export function updateRecent(job) {
  const tr = $('recent').querySelector(`tr[data-job="${job.id}"]`);
  if (!tr) return;
  const focus = focused();
  tr.replaceWith(recentRow(job));
  refocus(focus);
}
