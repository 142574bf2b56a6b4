/**
 * pnpm bench events — SSE pushed from the bus, on the real engines: a gateway (its own process)
 * with 50 jobs; first 10, then 1,000 concurrent SSE clients on it while 200 job.progress events/s
 * are published across the 50 jobs for 15 s. Prints publish → client receive latency p50/p99,
 * read-model reads per second in each phase (target: the same for 10 and 1,000 watchers), the
 * gateway's RSS and its event-loop delay p99 (its own Prometheus metrics).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createParser } from 'eventsource-parser';

/**
 * The SSE clients run in a worker thread of their own, so that parsing 4,000 events/s does not
 * delay the publisher (or the other way round) and the latency measured is the system's.
 */
async function clients(o: { api: string; ids: string[]; watchers: number }) {
  const latencies: number[] = [];
  const controllers: AbortController[] = [];
  let open = 0;
  let measuring = false;
  const streams = Array.from({ length: o.watchers }, async (_, w) => {
    const ctl = new AbortController();
    controllers.push(ctl);
    const res = await fetch(`${o.api}/api/jobs/${o.ids[w % o.ids.length]}/events`, { signal: ctl.signal });
    open++;
    const parser = createParser({
      onEvent: (m) => {
        const sentAt = Number(JSON.parse(m.data).eta_sec); // the bench puts its send time there
        if (measuring && sentAt > 1e12) latencies.push(Date.now() - sentAt);
      },
    });
    const dec = new TextDecoder();
    try {
      for await (const chunk of res.body!) parser.feed(dec.decode(chunk, { stream: true }));
    } catch {
      /* aborted at the end */
    }
  });
  while (open < o.watchers) await new Promise((r) => setTimeout(r, 50));
  parentPort!.postMessage({ type: 'open' });
  parentPort!.on('message', async (m: string) => {
    if (m === 'measure') measuring = true;
    if (m === 'stop') {
      measuring = false;
      for (const ctl of controllers) ctl.abort();
      await Promise.allSettled(streams);
      parentPort!.postMessage({ type: 'done', latencies });
    }
  });
}

if (!isMainThread) {
  await clients(workerData as { api: string; ids: string[]; watchers: number });
} else {
const { RabbitBus, newEvent } = await import('@stemflow/bus');
const { startCluster } = await import('../support/cluster.js');
const { toneWav } = await import('../support/audio.js');
const { uploadJob } = await import('../support/jobs-http.js');

const JOBS = 50;
const RATE = 200;
const SECONDS = Number(process.env.EVENTS_SECONDS ?? 15);
const c = await startCluster({ services: ['status', 'gateway'], env: { MAX_CONNECTIONS_PER_CLIENT: '5000', MAX_CONNECTIONS: '5000', LOG_LEVEL: 'warn' } });
try {
  const wav = await toneWav(1);
  // No decoder runs: the jobs stay pending, and every event below is the bench's own.
  const ids: string[] = [];
  for (let i = 0; i < JOBS; i++) ids.push(await uploadJob(c.api, { name: `bench-${i}.wav`, data: wav }, { shifts: String(1 + (i % 10)) }));
  const bus = await RabbitBus.connect({ url: c.env.AMQP_URL! });

  const metric = async (name: string, labels = '') => {
    const text = await (await fetch(`${c.api}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels}`) && !l.startsWith('#'));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const reads = async () => (await metric('stemflow_read_model_reads_total', '{by="sse_open"}')) + (await metric('stemflow_read_model_reads_total', '{by="sse_poll"}'));

  let k = 0; // events published so far, over both phases
  async function phase(watchers: number) {
    const worker = new Worker(new URL(import.meta.url), { workerData: { api: c.api, ids, watchers }, execArgv: ['--import', 'tsx'] });
    const next = (type: string) => new Promise<{ type: string; latencies?: number[] }>((resolve) => {
      const on = (m: { type: string; latencies?: number[] }) => {
        if (m.type === type) {
          worker.off('message', on);
          resolve(m);
        }
      };
      worker.on('message', on);
    });
    await next('open');
    const readsBefore = await reads();
    const t0 = Date.now();
    let sent = 0;
    let measuring = false;
    while (Date.now() - t0 < SECONDS * 1000) {
      // The first 2 s warm up (connections, JIT); latencies count after that.
      if (!measuring && Date.now() - t0 > 2000) {
        measuring = true;
        worker.postMessage('measure');
      }
      const due = Math.floor(((Date.now() - t0) / 1000) * RATE);
      for (; sent < due; sent++, k++) {
        const id = ids[k % JOBS]!;
        // Progress rises a little with every event of a job (the projection passes changes only).
        const step = Math.floor(k / JOBS) + 1;
        await bus.publish(newEvent('job.progress', id, { stage: 'decoding', progress: Math.min(0.049, step * 1e-6), etaSec: Date.now() }));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const readsPerSec = ((await reads()) - readsBefore) / ((Date.now() - t0) / 1000);
    const rss = await metric('stemflow_process_resident_memory_bytes');
    const loopP99 = await metric('stemflow_nodejs_eventloop_lag_p99_seconds');
    const done = next('done');
    worker.postMessage('stop');
    const latencies = (await done).latencies!.sort((a, b) => a - b);
    await worker.terminate();
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
    console.log(
      `${String(watchers).padStart(5)} watchers: ${sent} events published in ${SECONDS} s, ${latencies.length} deliveries measured (after 2 s); publish→client p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms (target ≤ 50 ms); read-model reads ${readsPerSec.toFixed(2)}/s while streaming; gateway RSS ${(rss / 2 ** 20).toFixed(0)} MiB, event-loop lag p99 ${(loopP99 * 1000).toFixed(1)} ms`,
    );
    return { readsPerSec };
  }

  console.log(`events benchmark: ${JOBS} jobs, ${RATE} job.progress/s for ${SECONDS} s, RabbitMQ + FerretDB, the gateway as its own process\n`);
  const few = await phase(10);
  const many = await phase(1000);
  console.log(`\nread-model reads/s while streaming, 1,000 vs 10 watchers: ${many.readsPerSec.toFixed(2)} vs ${few.readsPerSec.toFixed(2)} (target: the same; polling every 250 ms would be 4,000/s)`);
  await bus.close();
} finally {
  await c.stop();
}
process.exit(0);
}
