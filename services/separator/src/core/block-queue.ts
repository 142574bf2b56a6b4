/**
 * A short queue between the separation loop (which pushes each region as it is final) and the
 * stem writer (which takes them in order). Pushing waits while `depth` blocks are waiting, so
 * a slow writer holds the loop back instead of memory growing; a writer that failed makes the
 * next push fail with its error.
 */
export class BlockQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private ended = false;
  private error: unknown;
  private wakeReader: (() => void) | undefined;
  private wakeWriter: (() => void) | undefined;

  constructor(private readonly depth = 2) {}

  async push(x: T): Promise<void> {
    while (this.items.length >= this.depth && this.error === undefined) await new Promise<void>((r) => (this.wakeWriter = r));
    if (this.error !== undefined) throw this.error;
    this.items.push(x);
    this.wakeReader?.();
  }

  end(): void {
    this.ended = true;
    this.wakeReader?.();
  }

  /** Stops both sides: the reader throws `err`, and so does any push. */
  fail(err: unknown): void {
    this.error ??= err;
    this.wakeReader?.();
    this.wakeWriter?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.error !== undefined) throw this.error;
      const x = this.items.shift();
      if (x !== undefined) {
        this.wakeWriter?.();
        yield x;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wakeReader = r));
    }
  }
}
