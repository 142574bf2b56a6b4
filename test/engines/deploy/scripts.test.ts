/**
 * Every `pnpm` script of the root package does what it says: what it runs exists (a script that
 * called a missing infra/up.sh went unnoticed), benchmarks and vitest projects it names are real,
 * and `pnpm start` itself starts the embedded server and stops gracefully on Ctrl-C (SIGINT).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { eventually } from '../../support/env.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const vitestProjects = [...readFileSync(join(root, 'vitest.config.ts'), 'utf8').matchAll(/name: '([a-z]+)'/g)].map((m) => m[1]);
const benches = readdirSync(join(root, 'test/bench')).filter((f) => f.endsWith('.bench.ts')).map((f) => f.replace('.bench.ts', ''));

describe('the workers read no database', () => {
  it.each(['decoder', 'separator', 'webhooks'])('%s depends on neither packages/jobs nor a database driver, in its package or its sources', (service) => {
    const manifest = JSON.parse(readFileSync(join(root, `services/${service}/package.json`), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies)).not.toContain('@stemflow/jobs');
    expect(Object.keys(manifest.dependencies).filter((d) => /mongo/.test(d))).toEqual([]);
    const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
    for (const f of walk(join(root, `services/${service}/src`))) expect(readFileSync(f, 'utf8'), f).not.toMatch(/@stemflow\/jobs|mongoose|mongodb/);
  });
});

describe('pnpm scripts', () => {
  it.each(Object.entries(pkg.scripts))('%s: every file, project and benchmark it names exists', (name, command) => {
    for (const m of command.matchAll(/(?:bash|node(?: --import \S+)*|tsx)\s+([\w./-]+\.(?:sh|ts|js))/g)) expect(existsSync(join(root, m[1]!)), `${name} runs ${m[1]}`).toBe(true);
    for (const m of command.matchAll(/--project (\S+)/g)) expect(vitestProjects, `${name} names project ${m[1]}`).toContain(m[1]);
    const bench = /^bench:(.+)$/.exec(name)?.[1];
    if (bench) {
      expect(benches).toContain(bench);
      expect(command).toBe(`bash infra/bench.sh ${bench}`);
    }
  });

  it('every benchmark has its bench:<name> script', () => {
    for (const b of benches) expect(pkg.scripts[`bench:${b}`], b).toBe(`bash infra/bench.sh ${b}`);
  });

  it('pnpm start serves the embedded server, and Ctrl-C stops it gracefully (one signal, exit 0)', async () => {
    const port = 17_000 + (process.pid % 1000);
    const data = mkdtempSync(join(tmpdir(), 'start-'));
    // Blank URLs: whatever the calling shell has, this runs with no servers at all.
    const p = spawn('bash', ['infra/start-embedded.sh'], {
      cwd: root,
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', STORAGE_ROOT: data, AMQP_URL: '', S3_ENDPOINT: '', DATABASE_URL: '', OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    try {
      await eventually(async () => (await fetch(`http://127.0.0.1:${port}/livez`).catch(() => undefined))?.ok, { timeoutMs: 120_000, what: `pnpm start to serve:\n${out}` });
      const health = (await (await fetch(`http://127.0.0.1:${port}/api/health?details=true`)).json()) as { dependencies: { name: string; detail?: string }[] };
      expect(health.dependencies.find((d) => d.name === 'ffmpeg')?.detail).toMatch(/^ffmpeg \S+, ffprobe \S+$/);
      p.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('stopping: finishing in-flight work');
      expect(out).not.toContain('second signal');
    } finally {
      p.kill('SIGKILL');
    }
  });
});
