import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy a test can freeze: while paused, connections are accepted but no byte moves either
 * way, so the service behind it hangs mid-request exactly as on a stalled network.
 */
export async function pausableProxy(target: URL): Promise<{ url: string; pause: () => void; resume: () => void; connections: () => number; close: () => Promise<void> }> {
  let paused = false;
  let count = 0;
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    count++;
    const upstream = connect(Number(target.port), target.hostname);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    if (paused) for (const s of pair) s.pause();
    client.pipe(upstream).on('error', () => {});
    upstream.pipe(client).on('error', () => {});
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `${target.protocol}//127.0.0.1:${port}`,
    pause: () => {
      paused = true;
      for (const p of pairs) for (const s of p) s.pause();
    },
    resume: () => {
      paused = false;
      for (const p of pairs) for (const s of p) s.resume();
    },
    connections: () => count,
    close: () =>
      new Promise<void>((r) => {
        for (const p of pairs) for (const s of p) s.destroy();
        server.close(() => r());
      }),
  };
}
