/**
 * The docs say what is true: every relative link in README.md and docs/*.md resolves (to a file,
 * and to a heading when it names one), every repository path they name exists (or lies in a folder
 * .gitignore names, which runs fill), every `pnpm`
 * command they name exists (a script of the
 * package it runs in, a benchmark `pnpm bench` has, or pnpm's own), and the configuration table
 * lists exactly the variables the config schemas read.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICES } from '@stemflow/all-in-one/config';
import { envNames } from '@stemflow/config';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const text = (file: string) => readFileSync(join(root, file), 'utf8');
/** Prose only: fenced code blocks dropped (a link-like string in code is not a link). */
const prose = (md: string) => md.replace(/^```[\s\S]*?^```/gm, '');
/** Folders .gitignore names by path: what runs make there (test/artifacts/) is named by the docs, not kept. */
const generated = text('.gitignore').split('\n').filter((l) => /^[\w.-]+\/[\w./-]*\/$/.test(l.trim()));

/** GitHub's heading anchors: lower case, punctuation but - and _ dropped, spaces to -. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[`*_]/g, (c) => (c === '_' ? '_' : ''))
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
const anchors = (md: string) => new Set(prose(md).split('\n').filter((l) => /^#{1,6} /.test(l)).map((l) => slug(l.replace(/^#+ /, ''))));

describe('the docs', () => {
  it('link only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const file of docs) {
      for (const [, target] of prose(text(file)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:)/.test(target!)) continue;
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const resolved = path ? join(dirname(join(root, file)), path) : join(root, file);
        if (!existsSync(resolved)) broken.push(`${file}: ${target} (no file ${relative(root, resolved)})`);
        else if (anchor && resolved.endsWith('.md') && !anchors(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${file}: ${target} (no heading #${anchor})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('name only files and folders of the repository that exist', () => {
    const missing: string[] = [];
    for (const file of docs) {
      for (const [, path] of text(file).matchAll(/`((?:packages|services|models|infra|test|docs|examples)\/[\w./@-]*[\w/])`/g)) {
        if (/[{}*<>]/.test(path!) || /\.\.\./.test(path!)) continue; // a pattern, not a path
        if (generated.some((dir) => path!.startsWith(dir))) continue; // made by a run (the page's screenshots), not kept
        if (!existsSync(join(root, path!))) missing.push(`${file}: ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('name only pnpm commands that exist', () => {
    const scripts = (dir: string) => Object.keys((JSON.parse(text(join(dir, 'package.json'))) as { scripts?: Record<string, string> }).scripts ?? {});
    const byName = new Map<string, string[]>();
    for (const group of ['packages', 'services']) {
      for (const d of readdirSync(join(root, group))) {
        const pkg = join(group, d, 'package.json');
        if (existsSync(join(root, pkg))) byName.set((JSON.parse(text(pkg)) as { name: string }).name, scripts(join(group, d)));
      }
    }
    const own = new Set([...scripts('.'), 'install', 'exec', 'add', 'run', 'dlx']);
    const benches = new Set(readdirSync(join(root, 'test', 'bench')).map((f) => f.replace(/\.bench\.ts$/, '')));
    const unknown: string[] = [];
    let named = 0;
    for (const file of docs) {
      for (const [cmd] of text(file).matchAll(/\bpnpm (?:--filter \S+ )?[a-z][\w:-]*(?: [a-z][\w-]*)?/g)) {
        named++;
        const filter = /--filter (\S+) ([\w:-]+)/.exec(cmd);
        if (filter) {
          const [, pkg, script] = filter;
          if (!byName.get(pkg!)?.includes(script!)) unknown.push(`${file}: ${cmd}`);
          continue;
        }
        const [, name, arg] = cmd.split(' ') as [string, string, string | undefined];
        if (!own.has(name)) unknown.push(`${file}: ${cmd}`);
        else if (name === 'bench' && arg && !benches.has(arg)) unknown.push(`${file}: ${cmd} (no test/bench/${arg}.bench.ts)`);
      }
    }
    expect(named).toBeGreaterThan(10);
    expect(unknown).toEqual([]);
  });

  it('list in the configuration table exactly the variables the services read', () => {
    const ops = text('docs/operations.md');
    const table = ops.slice(ops.indexOf('## Configuration'), ops.indexOf('\n## ', ops.indexOf('## Configuration') + 1));
    const listed = new Set<string>();
    for (const row of table.split('\n').filter((l) => l.startsWith('| `'))) {
      for (const [, v] of row.split('|')[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) listed.add(v!);
    }
    const read = new Set(Object.values(SERVICES).flatMap((service) => envNames(service)));
    expect([...listed].filter((v) => !read.has(v)).sort(), 'in the table, read by no service').toEqual([]);
    expect([...read].filter((v) => !listed.has(v)).sort(), 'read by a service, not in the table').toEqual([]);
  });
});
