import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { StemflowError } from '@stemflow/contracts';
import type { BlobInfo, BlobStore, ByteRange, PutOptions } from './port.js';

const TMP = '.tmp-';

/**
 * Files under a root directory; writes go to a temp file renamed into place (atomic). Folders are
 * an artefact of keys, as in S3: made for a write, removed with the last file in them (a deleted
 * job leaves no empty folder, whatever wrote to it after the delete).
 */
export class FsBlobStore implements BlobStore {
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(key: string): string {
    const p = resolve(this.root, key);
    if (!p.startsWith(this.root + sep) || key.split('/').some((s) => s === '..' || s.startsWith(TMP))) {
      throw new StemflowError('INVALID_KEY', `invalid object key ${JSON.stringify(key)}`);
    }
    return p;
  }

  async put(key: string, body: Readable | Buffer, _opts?: PutOptions): Promise<{ bytes: number }> {
    const target = this.path(key);
    const tmp = join(dirname(target), `${TMP}${randomUUID()}`);
    const file = await this.create(tmp);
    let bytes = 0;
    const src = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    try {
      await pipeline(
        src,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const c of chunks) {
            bytes += c.length;
            yield c;
          }
        },
        file.createWriteStream(),
      );
      await rename(tmp, target);
      return { bytes };
    } catch (err) {
      await file.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      await this.prune(dirname(tmp));
      throw err;
    }
  }

  /** Opens a new file, making its folder; again if a delete removed the folder in between. */
  private async create(path: string): Promise<FileHandle> {
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dirname(path), { recursive: true });
        return await open(path, 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 4) throw err;
      }
    }
  }

  /** Removes dir and its parents up to the root while they are empty. */
  private async prune(dir: string): Promise<void> {
    for (let d = dir; d.startsWith(this.root + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return; // not empty (or not ours to remove)
      }
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const p = this.path(key);
    const info = await stat(p).catch(() => undefined);
    if (!info?.isFile()) throw notFound(key);
    return createReadStream(p, range ? { start: range.start, ...(range.end !== undefined ? { end: range.end } : {}) } : {});
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    const info = await stat(this.path(key)).catch(() => undefined);
    return info?.isFile() ? { key, size: info.size } : undefined;
  }

  /** Every file under prefix (walked from the deepest directory it names), temp files included. */
  private async files(prefix: string): Promise<{ key: string; path: string; temp: boolean }[]> {
    const out: { key: string; path: string; temp: boolean }[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) {
          const key = relative(this.root, p).split(sep).join('/');
          if (key.startsWith(prefix)) out.push({ key, path: p, temp: e.name.startsWith(TMP) });
        }
      }
    };
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(dirPart ? this.path(dirPart) : this.root);
    return out;
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    for (const f of await this.files(prefix)) {
      if (f.temp) continue;
      const s = await stat(f.path).catch(() => undefined);
      if (!s) continue; // deleted since the walk
      out.push({ key: f.key, size: s.size, modified: s.mtime });
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  async delete(key: string): Promise<void> {
    const p = this.path(key);
    await rm(p, { force: true });
    await this.prune(dirname(p));
  }

  async abortStaleWrites(prefix: string, startedBefore: Date, abandoned: (key: string) => boolean | Promise<boolean> = () => true): Promise<number> {
    let removed = 0;
    for (const f of await this.files(prefix)) {
      const s = f.temp ? await stat(f.path).catch(() => undefined) : undefined;
      if (s && s.mtime < startedBefore && (await abandoned(f.key))) {
        await rm(f.path, { force: true });
        await this.prune(dirname(f.path));
        removed++;
      }
    }
    return removed;
  }

  async deletePrefix(prefix: string): Promise<number> {
    const found = await this.list(prefix);
    for (const b of found) await this.delete(b.key);
    if (prefix.endsWith('/')) {
      const dir = this.path(prefix.slice(0, -1));
      // A writer may add a file while the folder is removed (ENOTEMPTY): removing again takes it too.
      await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
      await this.prune(dirname(dir));
    }
    return found.length;
  }

  async sourceUrl(key: string): Promise<string> {
    const p = this.path(key);
    if (!(await stat(p).catch(() => undefined))?.isFile()) throw notFound(key);
    return p;
  }

  async presignGet(): Promise<string | undefined> {
    return undefined;
  }

  async health() {
    try {
      await mkdir(this.root, { recursive: true });
      return { ok: true, detail: `filesystem ${this.root}` };
    } catch (err) {
      return { ok: false, detail: `filesystem ${this.root}: ${(err as Error).message}` };
    }
  }
}

export const notFound = (key: string) => new StemflowError('OBJECT_NOT_FOUND', `no object ${key}`, { status: 404 });
