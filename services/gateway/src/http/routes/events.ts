/** A job's progress as Server-Sent Events (the stream itself is a use case: job-stream.ts). */
import { Router } from 'express';
import { openJobStream, type StreamDeps } from '../../use-cases/job-stream.js';
import { jobIdOf, ownerFor, type Gateway } from '../context.js';

export function eventsRouter(g: Gateway): Router {
  const r = Router();
  const deps: StreamDeps = {
    jobs: g.deps.jobs,
    reader: g.reader,
    hub: g.options.hub,
    pollMs: g.options.ssePollMs ?? 250,
    quietPollMs: g.options.sseQuietPollMs ?? 30_000,
    keepAliveMs: g.options.sseKeepAliveMs ?? 15_000,
  };
  r.get('/jobs/:id/events', async (req, res) => {
    const stream = await openJobStream(deps, jobIdOf(req), ownerFor(res), req.get('last-event-id') ?? '');
    // The client has the job's last event: 204 tells EventSource to stop reconnecting.
    if (stream.upToDate) return void res.status(204).end();
    // SSE has its own heartbeat; the idle timeout is for uploads and stalled clients.
    req.socket.setTimeout(0);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 1000\n\n');
    req.on('close', stream.close);
    stream.start({
      event: (name, id, data) => void res.write(`event: ${name}\n${id ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`),
      comment: (text) => void res.write(`: ${text}\n\n`),
      end: () => void res.end(),
    });
  });
  return r;
}
