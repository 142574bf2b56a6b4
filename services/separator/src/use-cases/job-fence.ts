
import { objectKeys } from '@stemflow/contracts';
import { WorkStore } from '../adapters/work-store.js';
import type { SeparateDeps } from './separate-job.js';

/**
 * The end of a job as the separator sees it: canceled (the event this instance received, or the
 * gateway's marker) or deleted (its input gone from the store). Checked four times a second from
 * the events this instance received, so the writer and its encoders stop within a second.
 */
export class JobFence {
  /** The cancel was seen: nothing more is written. */
  stopped = false;
  private readonly onStop: (() => Promise<unknown>)[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly d: SeparateDeps,
    private readonly id: string,
  ) {
    this.timer = setInterval(() => {
      if (!this.stopped && d.cancels.seen(id)) this.stop();
    }, 250);
    this.timer.unref();
  }

  /** Runs `fn` the moment the job's end is seen (now, if it already was). */
  whenStopped(fn: () => Promise<unknown>) {
    if (this.stopped) void fn().catch(() => {});
    else this.onStop.push(fn);
  }

  private stop() {
    this.stopped = true;
    for (const fn of this.onStop.splice(0)) void fn().catch(() => {});
  }

  /**
   * Whether the job was canceled or deleted. After an object of the job vanished (`err`), the
   * delete's job.canceled, published before the objects are removed, may still be on its way:
   * it is waited for a moment.
   */
  async ended(err?: unknown): Promise<boolean> {
    if (this.stopped || (await this.d.cancels.isCanceled(this.id))) return true;
    if ((err as { code?: string } | undefined)?.code !== 'OBJECT_NOT_FOUND') return false;
    for (let i = 0; i < 20 && !this.d.cancels.seen(this.id); i++) await new Promise((r) => setTimeout(r, 100));
    return this.d.cancels.seen(this.id);
  }

  /**
   * What the job made is removed: its work area; everything under its prefix if it was deleted
   * (its input is gone: late writes included).
   */
  async cleanUp() {
    this.stop();
    await new WorkStore(this.d.blobs, this.id).clear();
    if (!(await this.d.blobs.head(objectKeys.input(this.id)))) await this.d.blobs.deletePrefix(objectKeys.job(this.id));
  }

  close() {
    clearInterval(this.timer);
  }
}
