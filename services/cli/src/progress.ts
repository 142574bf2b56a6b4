/** One progress line for both commands: stage, percentage, ETA (cli-progress; silent when --quiet or not a TTY). */
import { SingleBar } from 'cli-progress';

export type Progress = { update(p: { stage: string; progress: number; etaSec?: number | null }): void; stop(): void };

export function progressBar(out: NodeJS.WritableStream, quiet: boolean): Progress {
  const tty = (out as NodeJS.WriteStream).isTTY === true;
  if (quiet) return { update() {}, stop() {} };
  if (!tty) {
    // Logs and pipes get a line per stage change and per 10 %, not a redrawn bar.
    let last = '';
    return {
      update({ stage, progress, etaSec }) {
        const line = `${stage} ${Math.floor(progress * 10) * 10}%`;
        if (line === last) return;
        last = line;
        out.write(`${line}${etaSec ? ` (about ${Math.ceil(etaSec)} s left)` : ''}\n`);
      },
      stop() {},
    };
  }
  const bar = new SingleBar(
    { format: ' {bar} {percentage}% | {stage} | {eta_text}', hideCursor: true, stream: out as NodeJS.WriteStream, clearOnComplete: false, barsize: 30 },
  );
  bar.start(100, 0, { stage: 'uploaded', eta_text: '' });
  return {
    update({ stage, progress, etaSec }) {
      bar.update(Math.round(progress * 1000) / 10, { stage, eta_text: etaSec ? `about ${Math.ceil(etaSec)} s left` : '' });
    },
    stop: () => bar.stop(),
  };
}
