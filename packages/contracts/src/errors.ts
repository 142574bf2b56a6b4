/**
 * One error type for the whole system. `code` is stable (clients and tests match on it, never on
 * the message); `retryable` tells the bus whether a redelivery can help; `status` is the HTTP status
 * an entry point maps it to.
 */
export class StemflowError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly status: number;
  /** When a retry can help: seconds to wait (an entry point says so, e.g. Retry-After). */
  readonly retryAfterSec: number | undefined;
  /** The caller's limits and what is left of them (RateLimit-Policy / RateLimit fields), for a refusal over a limit. */
  readonly limits: { policy: string[]; state: string[] } | undefined;
  /** The job's stage it ends, when not the consuming queue's own (job.failed's `stage`). */
  readonly stage: string | undefined;
  constructor(code: string, message: string, opts: { retryable?: boolean; status?: number; cause?: unknown; retryAfterSec?: number; limits?: { policy: string[]; state: string[] }; stage?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'StemflowError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.status = opts.status ?? (this.retryable ? 503 : 400);
    this.retryAfterSec = opts.retryAfterSec;
    this.limits = opts.limits;
    this.stage = opts.stage;
  }
}

/** A dependency (broker, store, database) is unavailable: try again later. */
export const unavailable = (what: string, cause?: unknown) =>
  new StemflowError('DEPENDENCY_UNAVAILABLE', `${what} is unavailable, try again shortly`, { retryable: true, status: 503, cause });

/** The input is wrong and will stay wrong: never retried. */
export const invalid = (code: string, message: string, status = 400) => new StemflowError(code, message, { status });

/** Errors that are not ours are treated as transient: a retry is cheap, a lost job is not. */
export const isRetryable = (err: unknown): boolean => (err instanceof StemflowError ? err.retryable : true);

export const describeError = (err: unknown): string => (err instanceof Error ? err.message : String(err));
