/**
 * docker-compose.yml and the Dockerfile, checked statically (no Docker engine runs here): every
 * service, image, variable, port, health check and dependency against the config schemas and the
 * repository, so the file users run cannot drift from the code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SERVICES, type ServiceName } from '@stemflow/all-in-one/config';
import { envNames, parseConfig } from '@stemflow/config';
import { MALLOC_TUNABLES, MODEL_NODE_OPTIONS } from '@stemflow/models';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const read = (p: string) => readFileSync(`${root}/${p}`, 'utf8');

/** Compose's own interpolation for what this file uses: ${VAR:-default} and ${VAR}, with nothing set. */
const interpolate = (text: string) => text.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name: string, dflt?: string) => dflt ?? '');

type HealthCheck = { test: string[]; interval?: string; retries?: number };
type ComposeService = {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  environment?: Record<string, string | number | null>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: HealthCheck;
  volumes?: string[];
  command?: string[];
};
const compose = parse(interpolate(read('docker-compose.yml')), { merge: true }) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
const stemflow = ['gateway', 'decoder', 'separator', 'status', 'webhooks'] as const satisfies readonly ServiceName[];
/** The official images, and the container port each stemflow URL must point at. */
const INFRA: Record<string, { image: RegExp; port: number; scheme: string; variable: string }> = {
  rabbitmq: { image: /^rabbitmq:\d+(\.\d+)*-management$/, port: 5672, scheme: 'amqp:', variable: 'AMQP_URL' },
  minio: { image: /^minio\/minio:RELEASE\.\d{4}-\d{2}-\d{2}T[\d-]+Z$/, port: 9000, scheme: 'http:', variable: 'S3_ENDPOINT' },
  mongo: { image: /^mongo:\d+(\.\d+)*$/, port: 27017, scheme: 'mongodb:', variable: 'DATABASE_URL' },
  jaeger: { image: /^jaegertracing\/all-in-one:\d+\.\d+\.\d+$/, port: 4318, scheme: 'http:', variable: 'OTEL_EXPORTER_OTLP_ENDPOINT' },
};

describe('docker-compose.yml', () => {
  it('has exactly the four engines and the five stemflow services', () => {
    expect(Object.keys(compose.services).sort()).toEqual([...Object.keys(INFRA), ...stemflow].sort());
  });

  it.each(Object.entries(INFRA))('%s runs its official image at a pinned version', (name, spec) => {
    const s = compose.services[name]!;
    expect(s.image).toMatch(spec.image);
    expect(s.image).not.toMatch(/:latest$/);
    expect(s.ports?.some((p) => p.endsWith(`:${spec.port}`))).toBe(true);
    for (const v of s.volumes ?? []) {
      const [src] = v.split(':');
      if (src!.startsWith('./')) expect(existsSync(`${root}/${src}`), v).toBe(true);
      else expect(Object.keys(compose.volumes)).toContain(src);
    }
  });

  it.each(stemflow)('%s: built from the Dockerfile for itself, with only variables its config schema knows, all valid', (name) => {
    const s = compose.services[name]!;
    expect(s.build?.dockerfile).toBe('Dockerfile');
    expect(s.build?.args?.SERVICE).toBe(name);
    expect(existsSync(`${root}/services/${name}/src/main.ts`)).toBe(true);
    const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v === null ? '' : String(v)]));
    const known = envNames(SERVICES[name]);
    // Read by the C library at process start, not by the config: the model's malloc settings.
    if (name === 'separator') expect(env.GLIBC_TUNABLES).toBe(MALLOC_TUNABLES);
    // Read by Node at process start: one V8 platform thread.
    if (name === 'separator') expect(env.NODE_OPTIONS).toBe(MODEL_NODE_OPTIONS);
    delete env.GLIBC_TUNABLES;
    delete env.NODE_OPTIONS;
    for (const k of Object.keys(env)) expect(known, `${name} sets ${k}, which its config does not read`).toContain(k);
    expect(() => parseConfig(SERVICES[name], env)).not.toThrow();
    const config = parseConfig(SERVICES[name], env);
    // Distributed: every adapter URL is set and points at the engine's service name and port.
    for (const [engine, spec] of Object.entries(INFRA)) {
      const url = new URL(env[spec.variable]!);
      expect(url.protocol, spec.variable).toBe(spec.scheme);
      expect(url.hostname, spec.variable).toBe(engine);
      expect(Number(url.port), spec.variable).toBe(spec.port);
      expect(s.depends_on?.[engine], `${name} waits for ${engine}`).toBeDefined();
    }
    expect(s.depends_on?.rabbitmq?.condition).toBe('service_healthy');
    // The S3 keys are MinIO's root credentials.
    expect(env.S3_ACCESS_KEY).toBe(compose.services.minio!.environment!.MINIO_ROOT_USER);
    expect(env.S3_SECRET_KEY).toBe(compose.services.minio!.environment!.MINIO_ROOT_PASSWORD);
    // The AMQP user is the broker's.
    expect(decodeURIComponent(new URL(env.AMQP_URL!).username)).toBe(compose.services.rabbitmq!.environment!.RABBITMQ_DEFAULT_USER);
    // The health check asks this service's own port for its readiness.
    const port = (config as { PORT: number }).PORT;
    expect(s.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${port}/api/health`);
    if (s.ports) expect(s.ports).toContain(`${port}:${port}`);
  });

  it('every way of starting a process that runs the model sets the malloc tunables and one V8 platform thread', () => {
    const scripts = (p: string) => (JSON.parse(read(p)) as { scripts: Record<string, string> }).scripts;
    const starts = [scripts('services/separator/package.json').start!, scripts('services/all-in-one/package.json').start!, scripts('package.json').stemflow!, read('infra/start-embedded.sh')];
    for (const start of starts) {
      expect(start).toContain(`GLIBC_TUNABLES=\${GLIBC_TUNABLES:-${MALLOC_TUNABLES}}`);
      expect(start).toContain(`node ${MODEL_NODE_OPTIONS} `);
    }
  });

  it('every way of starting a process registers OpenTelemetry before the service imports anything', () => {
    const scripts = (p: string) => (JSON.parse(read(p)) as { scripts: Record<string, string> }).scripts;
    for (const s of [...stemflow, 'all-in-one']) expect(scripts(`services/${s}/package.json`).start, s).toMatch(new RegExp(`node (${MODEL_NODE_OPTIONS} )?--import tsx --import @stemflow/telemetry/register src/main\\.ts$`));
    expect(read('infra/start-embedded.sh')).toContain('--import tsx --import ./packages/telemetry/src/register.ts services/all-in-one/src/main.ts');
    expect(read('Dockerfile')).toContain('exec node --import tsx --import ./packages/telemetry/src/register.ts services/${SERVICE}/src/main.ts');
    expect(read('test/support/processes.ts')).toContain("'--import', './packages/telemetry/src/register.ts'");
    expect(read('services/cli/bin/stemflow.js')).toMatch(/await import\('@stemflow\/telemetry\/register'\);\s*const \{ main \} = await import/);
  });

  it('the services use distinct ports, and the gateway is published', () => {
    const ports = stemflow.map((n) => compose.services[n]!.environment!.PORT);
    expect(new Set(ports).size).toBe(stemflow.length);
    expect(compose.services.gateway!.ports).toEqual(['8000:8000']);
  });

  it("the broker's consumer timeout is the native one (long jobs are not cut off)", () => {
    const timeout = (text: string) => /^consumer_timeout\s*=\s*(\d+)/m.exec(text)?.[1];
    expect(timeout(read('infra/docker/rabbitmq.conf'))).toBe(timeout(read('infra/rabbitmq.conf')));
    expect(compose.services.rabbitmq!.volumes).toContain('./infra/docker/rabbitmq.conf:/etc/rabbitmq/conf.d/20-stemflow.conf:ro');
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const instr = (name: string) => lines.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());

  it('builds on Node 24 (the version the project pins) and installs ffmpeg', () => {
    const pinned = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    expect(pinned).toMatch(/>=24/);
    expect(instr('FROM')).toEqual([expect.stringMatching(/^node:24(-[a-z]+)*-slim$|^node:24(\.\d+)*(-[a-z]+)*$/)]);
    expect(instr('RUN').join(' ')).toMatch(/apt-get install .*ffmpeg/);
  });

  it('installs the pinned pnpm from the lockfile, frozen', () => {
    const pm = (JSON.parse(read('package.json')) as { packageManager: string }).packageManager;
    expect(instr('RUN').join(' ')).toContain(`npm install -g ${pm}`);
    expect(instr('RUN').some((r) => /pnpm install .*--frozen-lockfile/.test(r))).toBe(true);
  });

  it('copies only files that exist, and keeps node_modules and data out of the context', () => {
    for (const c of instr('COPY')) {
      const parts = c.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) expect(existsSync(`${root}/${src}`), src).toBe(true);
    }
    const ignore = read('.dockerignore');
    expect(ignore).toMatch(/node_modules/);
    expect(ignore).toMatch(/^data$/m);
  });

  it('runs services/${SERVICE}/src/main.ts as a non-root user, under an init, with a health check', () => {
    expect(instr('ARG')).toContain('SERVICE=gateway');
    expect(instr('CMD').join(' ')).toContain('services/${SERVICE}/src/main.ts');
    expect(instr('USER')).toEqual(['node']);
    expect(instr('ENTRYPOINT').join(' ')).toContain('tini');
    expect(instr('HEALTHCHECK').join(' ')).toContain('/api/health');
  });
});
