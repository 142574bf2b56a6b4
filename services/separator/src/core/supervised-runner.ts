/**
 * The runners the separator keeps for its life, over worker runners (runner.ts): one that outlives
 * its thread (a new worker after a crash) and, over that, one that holds the graph the job in hand
 * asks for.
 */
import type { Quality } from '@stemflow/models';
import type { ModelRunner, WorkerRunner } from './runner.js';

export type SupervisedRunner<R extends ModelRunner = ModelRunner> = ModelRunner & {
  readonly restarts: number;
  readonly lastFailure: string | undefined;
  /** The runner serving now (a new one after each restart). */
  readonly current: R;
};

/**
 * A runner that outlives its thread: when the model's worker dies (out of memory, a crash in the
 * runtime), the run in flight fails (its job is retried by the bus) and the next run starts a new
 * worker, instead of every later job failing until the process restarts.
 */
export function supervisedRunner<R extends ModelRunner>(first: R, start: () => Promise<R>, log?: (msg: string) => void): SupervisedRunner<R> {
  let current = first;
  let replacing: Promise<R> | undefined;
  let restarts = 0;
  let lastFailure: string | undefined;
  let closed = false;
  const live = async (): Promise<R> => {
    if (!current.dead || closed) return current;
    replacing ??= (async () => {
      lastFailure = current.dead!.message;
      log?.(`${lastFailure}: starting a new model worker`);
      try {
        // One session in memory at a time (3-5 GiB each): the dead thread is gone first.
        await current.exited;
        current = await start();
        restarts++;
        return current;
      } finally {
        replacing = undefined;
      }
    })();
    return replacing;
  };
  return {
    get device() {
      return current.device;
    },
    get dead() {
      return closed ? current.dead : undefined;
    },
    get restarts() {
      return restarts;
    },
    get lastFailure() {
      return lastFailure;
    },
    get current() {
      return current;
    },
    get queues() {
      return current.queues;
    },
    run: async (mix, spec, signal) => (await live()).run(mix, spec, signal),
    close: async () => {
      closed = true;
      await replacing?.catch(() => {});
      await current.close();
    },
  };
}

/**
 * One model in memory at a time, of the quality the job in hand asks for: selecting another ends
 * the current worker (once its run returns) and starts the other's. A separator that sees one
 * quality (the default) never switches; one that alternates pays a model load (about a second) per
 * switch, not a second session's memory.
 */
export class QualityRunner implements ModelRunner {
  private constructor(
    private runner: SupervisedRunner<WorkerRunner>,
    private loaded: Quality,
    private readonly start: (q: Quality) => Promise<SupervisedRunner<WorkerRunner>>,
  ) {}

  static async open(first: Quality, start: (q: Quality) => Promise<SupervisedRunner<WorkerRunner>>): Promise<QualityRunner> {
    return new QualityRunner(await start(first), first, start);
  }

  /** The quality loaded now, and its supervised runner (restarts, the worker serving). */
  get quality(): Quality {
    return this.loaded;
  }
  get current(): SupervisedRunner<WorkerRunner> {
    return this.runner;
  }
  get device() {
    return this.runner.device;
  }
  get dead() {
    return this.runner.dead;
  }
  get queues() {
    return this.runner.queues;
  }
  run(mix: Float32Array, spec: Float32Array, signal?: AbortSignal) {
    return this.runner.run(mix, spec, signal);
  }
  async select(quality: Quality): Promise<void> {
    if (quality === this.loaded) return;
    await this.runner.close();
    this.runner = await this.start(quality);
    this.loaded = quality;
  }
  close() {
    return this.runner.close();
  }
}
