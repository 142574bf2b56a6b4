/**
 * The Helm chart (deploy/helm/stemflow), without a cluster: `helm lint --strict` and `helm
 * template` with the default, GPU and scale-to-zero values; every rendered object checked by
 * kube-check against the Kubernetes API's own OpenAPI schemas and KEDA's CRDs (unknown fields,
 * wrong types and missing required fields fail: shown by broken renders below); and what the chart
 * assumes about the services — variables, ports, queues, prefetch, the separator's hand-back —
 * held to the code. Helm, kube-check and the schemas are the project's own (infra/kube-tools.sh).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SERVICES, type ServiceName } from '@stemflow/all-in-one/config';
import { envNames, parseConfig } from '@stemflow/config';
import { QUEUES } from '@stemflow/contracts';
import { MALLOC_TUNABLES, MODEL_NODE_OPTIONS } from '@stemflow/models';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const chart = `${root}/deploy/helm/stemflow`;
let tools: { HELM: string; KUBE_CHECK: string; KUBE_SCHEMAS: string };

type Obj = { apiVersion: string; kind: string; metadata: { name: string }; spec: any };
const render = (values: string[] = [], set: string[] = []): Obj[] => {
  const out = execFileSync(tools.HELM, ['template', 'rel', chart, ...values.flatMap((v) => ['-f', `${chart}/${v}`]), ...set.flatMap((s) => ['--set', s])], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJSON() as Obj).filter(Boolean);
};
const check = (objs: Obj[]) => spawnSync(tools.KUBE_CHECK, ['-schemas', tools.KUBE_SCHEMAS], { input: objs.map((o) => stringify(o)).join('---\n'), encoding: 'utf8' });
const find = (objs: Obj[], kind: string, service: string) => objs.find((o) => o.kind === kind && o.metadata.name === `rel-stemflow-${service}`);
const container = (objs: Obj[], service: string) => find(objs, 'Deployment', service)!.spec.template.spec.containers[0];
const env = (objs: Obj[], service: string) => Object.fromEntries((container(objs, service).env as { name: string; value?: string }[]).map((e) => [e.name, e.value ?? '(secret)']));

beforeAll(() => {
  const out = execFileSync('bash', [`${root}/infra/kube-tools.sh`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  tools = Object.fromEntries(out.trim().split('\n').map((l) => l.split('=') as [string, string])) as typeof tools;
}, 900_000);

describe('the Helm chart', () => {
  const VALUES: Record<string, string[]> = { default: [], gpu: ['values-gpu.yaml'], 'scale to zero': ['values-scale-to-zero.yaml'] };

  it.each(Object.keys(VALUES))('lints and renders with the %s values; every object is valid against the Kubernetes and KEDA schemas', (name) => {
    const lint = spawnSync(tools.HELM, ['lint', '--strict', chart, ...VALUES[name]!.flatMap((v) => ['-f', `${chart}/${v}`])], { encoding: 'utf8' });
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    const objs = render(VALUES[name]);
    const r = check(objs);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`${objs.length} objects, 0 invalid`);
    expect(objs.filter((o) => o.kind === 'Deployment').length).toBeGreaterThanOrEqual(4);
  });

  it('kube-check fails an unknown field, a wrong type, a missing required field and an unknown kind', () => {
    const objs = render();
    const dep = find(objs, 'Deployment', 'decoder')!;
    const so = find(objs, 'ScaledObject', 'separator')!;
    const broken: [string, Obj][] = [
      ['unknown field', { ...dep, spec: { ...dep.spec, replicaz: 2 } }],
      ['wrong type', { ...dep, spec: { ...dep.spec, revisionHistoryLimit: 'five' } }],
      ['missing required', { ...dep, spec: { ...dep.spec, template: { ...dep.spec.template, spec: { ...dep.spec.template.spec, containers: [{ image: 'x' }] } } } }],
      ['unknown KEDA field', { ...so, spec: { ...so.spec, minReplicas: 1 } }],
      ['KEDA trigger without type', { ...so, spec: { ...so.spec, triggers: [{ metadata: so.spec.triggers[0].metadata }] } }],
      ['unknown kind', { ...dep, apiVersion: 'apps/v2' }],
    ];
    for (const [what, o] of broken) expect(check([o]).status, what).toBe(1);
  });

  it("sets only variables the services read, on their own ports, and scales each worker on its own queue by its prefetch", () => {
    const objs = render([], ['secrets.webhookSecret.secret=hooks']);
    for (const service of ['gateway', 'decoder', 'separator', 'status', 'webhooks'] as const satisfies readonly ServiceName[]) {
      // SERVICE picks the image's entry point; GLIBC_TUNABLES and NODE_OPTIONS are read at process start.
      const vars = Object.keys(env(objs, service)).filter((v) => !['SERVICE', 'GLIBC_TUNABLES', 'NODE_OPTIONS'].includes(v));
      expect(vars.filter((v) => !envNames(SERVICES[service]).includes(v)), service).toEqual([]);
      // The chart's port is the service's own default, and what its probes and Service use.
      const port = container(objs, service).ports[0].containerPort;
      expect(port, service).toBe(parseConfig(SERVICES[service], {}).PORT);
      expect(container(objs, service).livenessProbe.httpGet.path).toBe('/livez');
      expect(find(objs, 'Service', service)!.spec.ports[0].port).toBe(port);
      // A config the service accepts: the rendered literal values parse.
      const literal = Object.fromEntries(Object.entries(env(objs, service)).filter(([, v]) => v !== '(secret)'));
      expect(() => parseConfig(SERVICES[service], literal), service).not.toThrow();
    }
    // The separator starts as its start script does: the model's malloc settings.
    expect(env(objs, 'separator').GLIBC_TUNABLES).toBe(MALLOC_TUNABLES);
    expect(env(objs, 'separator').NODE_OPTIONS).toBe(MODEL_NODE_OPTIONS);
    const queues = { decoder: QUEUES.decoder, separator: QUEUES.separator, webhooks: QUEUES.webhooks };
    for (const [service, q] of Object.entries(queues)) {
      const trigger = find(objs, 'ScaledObject', service)!.spec.triggers[0];
      expect(trigger.metadata.queueName).toBe(q.name);
      expect(trigger.metadata.protocol).toBe('http'); // counts jobs in flight, not only those waiting
      expect(Number(trigger.metadata.value), service).toBe(service === 'separator' ? 1 : q.prefetch);
    }
    // No replica count where KEDA or the HPA owns it.
    for (const service of ['gateway', 'decoder', 'separator', 'webhooks']) expect(find(objs, 'Deployment', service)!.spec.replicas, service).toBeUndefined();
    expect(find(objs, 'Deployment', 'status')!.spec.replicas).toBe(2);
  });

  it("gives a stopping separator longer than its hand-back bound, and asks for the memory its engines need", () => {
    for (const engines of [1, 2]) {
      const concurrency = engines + 1;
      const objs = render([], [`separator.engines=${engines}`, `separator.concurrency=${concurrency}`, `separator.resources.limits.memory=${engines * 3 + 1}Gi`]);
      const pod = find(objs, 'Deployment', 'separator')!.spec.template.spec;
      const vars = env(objs, 'separator');
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(Number(vars.SEPARATOR_MAX_HOLD_SEC));
      expect(Number(vars.SEPARATOR_ENGINES)).toBe(engines);
      expect(Number(vars.SEPARATOR_CONCURRENCY)).toBe(concurrency);
      expect(Number(find(objs, 'ScaledObject', 'separator')!.spec.triggers[0].metadata.value)).toBe(concurrency);
    }
    const limit = find(render(), 'Deployment', 'separator')!.spec.template.spec.containers[0].resources.limits.memory as string;
    expect(parseFloat(limit) / (limit.endsWith('Mi') ? 1024 : 1)).toBeGreaterThanOrEqual(2.8 + 0.3); // one engine (docs/benchmarks.md) and the process
  });

  it('GPU values: CUDA, a GPU per replica, on GPU nodes; scale to zero: no separator while there is no work', () => {
    const gpu = render(['values-gpu.yaml']);
    const pod = find(gpu, 'Deployment', 'separator')!.spec.template.spec;
    expect(env(gpu, 'separator').SEPARATOR_DEVICE).toBe('cuda');
    expect(pod.containers[0].resources.limits['nvidia.com/gpu']).toBe(1);
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations[0].key).toBe('nvidia.com/gpu');
    const plain = render();
    expect(env(plain, 'separator').SEPARATOR_DEVICE).toBe('cpu');
    const zero = render(['values-scale-to-zero.yaml']);
    expect(find(zero, 'ScaledObject', 'separator')!.spec.minReplicaCount).toBe(0);
    expect(find(zero, 'Deployment', 'webhooks')).toBeDefined(); // a webhook secret given: the webhook service runs
    expect(find(plain, 'Deployment', 'webhooks')).toBeUndefined(); // none: it would have nothing to do
  });

  it('network policies: only the decoder and the webhook service reach the internet, never the private ranges', () => {
    const objs = render([], ['secrets.webhookSecret.secret=hooks']);
    for (const service of ['gateway', 'decoder', 'separator', 'status', 'webhooks']) {
      const egress = find(objs, 'NetworkPolicy', service)!.spec.egress as { to?: { ipBlock?: { cidr: string; except?: string[] } }[] }[];
      const open = egress.filter((e) => e.to?.some((p) => p.ipBlock?.except?.length));
      expect(open.length, service).toBe(service === 'decoder' || service === 'webhooks' ? 1 : 0);
      for (const e of open) expect(e.to![0]!.ipBlock!.except).toEqual(expect.arrayContaining(['10.0.0.0/8', '169.254.0.0/16']));
    }
  });
});
