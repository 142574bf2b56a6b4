// Small helpers every part of the page uses.
export const $ = (id) => document.getElementById(id);

/** m:ss of a time in seconds. */
export const clock = (t) => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, '0')}`;

/** Time left in words: to 5 s under a minute and a half, else to the nearest minute (65 s is not "2 min"). */
export const fmtEta = (s) => {
  if (s == null) return '';
  if (s < 90) return `about ${Math.max(5, Math.round(s / 5) * 5)} s left`;
  return `about ${Math.round(s / 60)} min left`;
};

/** How long ago an ISO time was, in words. */
export const age = (iso) => {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 60 ? 'just now' : s < 3600 ? `${Math.floor(s / 60)} min ago` : s < 86400 ? `${Math.floor(s / 3600)} h ago` : `${Math.floor(s / 86400)} d ago`;
};

/** Text made safe to put into HTML. */
export const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

export const isRunning = (job) => job.status === 'pending' || job.status === 'processing';
