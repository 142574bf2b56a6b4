// The API key (entered once, kept in this browser) and every call to the API, which sends it.
import { $ } from './util.js';

const KEY = 'stemflow.apiKey';
export const apiKey = () => localStorage.getItem(KEY) ?? '';
export const auth = () => (apiKey() ? { authorization: `Bearer ${apiKey()}` } : {});

export function showKeyState(message) {
  $('keystate').textContent = message ?? (apiKey() ? 'key saved in this browser' : '');
}
export function saveKey(k) {
  if (k) localStorage.setItem(KEY, k);
  else localStorage.removeItem(KEY);
  showKeyState();
}

export async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...auth(), ...(init.headers ?? {}) } });
  if (res.status === 401) {
    showKeyState('this server needs an API key: enter it above');
    $('apikey').focus();
  }
  return res;
}

/** The sentence of a problem answer (RFC 9457 detail), or its status. */
export const errorOf = async (res) => {
  try {
    return (await res.json()).detail;
  } catch {
    return `HTTP ${res.status}`;
  }
};

/** Downloads with the API key (a plain link cannot send it); says how it went in #mixstate. */
export async function download(url, name) {
  $('mixstate').textContent = 'preparing the download…';
  const res = await api(url);
  if (!res.ok) {
    $('mixstate').textContent = await errorOf(res);
    return;
  }
  const cd = res.headers.get('content-disposition') ?? '';
  const m = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(await res.blob());
  a.download = m ? decodeURIComponent(m[1]) : name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  $('mixstate').textContent = `downloaded ${a.download}`;
}
