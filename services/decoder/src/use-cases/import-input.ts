/**
 * The first stage of a job whose input was given by URL: the file is fetched into the store, with
 * an upload's checks (size, type by content) and the address guard at every hop, bounded by
 * IMPORT_TIMEOUT_SEC for the whole transfer. Bytes so far go out as job.progress (stage
 * `importing`), what was stored as job.imported. A cancel or a deletion stops the transfer at once
 * and leaves nothing; anything the source does wrong fails the job with a code and a sentence.
 */
import { AUDIO_SNIFFER } from '@stemflow/audio';
import { newEvent } from '@stemflow/bus';
import { StemflowError, type EventOf, type InputInfo } from '@stemflow/contracts';
import { addressPolicy, openImport, type AddressPolicy } from '@stemflow/net';
import { readImportTarget, safeFileName, storeChecked } from '@stemflow/storage';
import type { DecodeDeps } from './decode-job.js';

export type ImportConfig = {
  /** Which addresses may be reached besides public ones (OUTBOUND_ALLOW_CIDRS), and how names resolve. */
  policy: AddressPolicy;
  /** The whole transfer, first byte to last (IMPORT_TIMEOUT_SEC). */
  timeoutMs: number;
  /** The largest file stored (MAX_UPLOAD_BYTES, as for uploads). */
  maxBytes: number;
};
export const importDefaults = (): ImportConfig => ({ policy: addressPolicy(), timeoutMs: 120_000, maxBytes: 500 * 1024 * 1024 });

/** How often bytes so far are reported, and how often a cancel is looked for. */
const REPORT_MS = 1000;
const WATCH_MS = 250;

/** The network's and the store's refusals, as the job's end: a stable code and a sentence. */
function asJobError(err: StemflowError, url: string, cfg: ImportConfig): StemflowError {
  const end = (code: string, why: string) => new StemflowError(code, `The file at ${url} could not be imported: ${why}.`, { stage: 'importing' });
  switch (err.code) {
    case 'URL_REFUSED':
    case 'URL_UNRESOLVED':
      return end(err.code, err.message);
    case 'UPSTREAM_TIMEOUT':
      return end('IMPORT_TIMEOUT', `it did not arrive whole within ${Math.round(cfg.timeoutMs / 1000)} s (IMPORT_TIMEOUT_SEC)`);
    case 'UPSTREAM_UNREACHABLE':
      return end('IMPORT_UNREACHABLE', err.message);
    case 'IMPORT_FAILED':
      return end('IMPORT_FAILED', err.message);
    case 'UPLOAD_TOO_LARGE':
      return end('INPUT_TOO_LARGE', err.message);
    case 'NOT_AUDIO':
    case 'UNSUPPORTED_MEDIA_TYPE':
    case 'EMPTY_FILE':
      return end(err.code, err.message);
    default:
      return err;
  }
}

/**
 * Fetches the job's input. Resolves with what was stored (and announced), or undefined when the
 * job was canceled or deleted before or during the transfer (nothing is left under its key).
 */
export async function importInput(d: DecodeDeps, e: EventOf<'job.created'>, cfg: ImportConfig): Promise<InputInfo | undefined> {
  const id = e.jobId;
  const src = e.payload.import!;
  const log = d.log.child({ jobId: id });
  // The whole URL is kept beside the job (events carry it redacted); gone means the job was deleted.
  const target = await readImportTarget(d.blobs, id);
  if (!target || d.cancels.seen(id)) return void log.info('job canceled or deleted before its import');

  const stop = new AbortController();
  const ended = () => d.cancels.seen(id);
  // The job's end: whatever the transfer wrote is removed, and that is all.
  const stopped = async () => {
    await d.blobs.delete(src.key).catch(() => {});
    log.info('job canceled or deleted while importing, stopped');
  };
  const watch = setInterval(() => {
    if (ended()) stop.abort(new StemflowError('CANCELED', 'the job was canceled'));
  }, WATCH_MS);
  let sent = 0;
  const report = (received: number, total: number | undefined, force = false) => {
    if (!force && Date.now() - sent < REPORT_MS) return;
    sent = Date.now();
    d.bus.publish(newEvent('job.progress', id, { stage: 'importing', progress: 0, bytes: { received, ...(total !== undefined ? { total } : {}) } })).catch(() => {});
  };
  try {
    const opened = await openImport(target.url, { policy: cfg.policy, timeoutMs: cfg.timeoutMs, maxBytes: cfg.maxBytes, signal: stop.signal });
    report(0, opened.total, true);
    let stored;
    try {
      stored = await storeChecked(d.blobs, src.key, opened.body, { maxBytes: cfg.maxBytes, sniff: AUDIO_SNIFFER, signal: stop.signal, onBytes: (n) => report(n, opened.total) });
    } finally {
      opened.body.destroy();
    }
    // A deletion that raced the last write: what was written is removed, the job is over.
    if (ended() || !(await readImportTarget(d.blobs, id))) return void (await stopped());
    const input: InputInfo = { key: stored.key, filename: safeFileName(opened.filename ?? src.filename), size: stored.size, content_type: stored.contentType, sha256: stored.sha256, url: src.url };
    await d.bus.publish(newEvent('job.imported', id, { input }));
    log.info({ bytes: stored.size, type: stored.contentType, from: opened.origin }, 'imported');
    return input;
  } catch (err) {
    if (ended()) return void (await stopped());
    throw err instanceof StemflowError ? asJobError(err, src.url, cfg) : err;
  } finally {
    clearInterval(watch);
  }
}
