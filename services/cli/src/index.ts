/**
 * `stemflow`: separate a song from the command line.
 *
 *   stemflow separate <file> [options]         in this process, no servers (the embedded pipeline)
 *   stemflow submit <file> --api URL [options] through a running gateway, then download the stems
 *
 * Exit codes: 0 stems written, 1 the job failed or was canceled (the reason is printed),
 * 2 a usage error, 130 interrupted.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { JobOptions, OPTION_NAMES, OPTION_TEXT, optionsFromFields, type OptionFields } from '@stemflow/contracts';
import { separateCommand } from './separate.js';
import { submitCommand } from './submit.js';

/** Every job option is a flag: its name with dashes; yes/no options take no value. */
const flagOf = (option: string) => option.replace(/_/g, '-');
const OPTION_FLAGS = Object.fromEntries(OPTION_NAMES.map((k) => [flagOf(k), { type: OPTION_TEXT[k] === 'bool' ? ('boolean' as const) : ('string' as const) }]));

export const USAGE = `stemflow — separate a song into drums, bass, other and vocals (htdemucs)

Usage:
  stemflow separate <file> [options]            run the whole pipeline here, no servers
  stemflow submit <file> --api <url> [options]  upload to a running stemflow and download the stems
  stemflow submit --url <url> --api <url> [options]
                                                the same, the server fetching the file from a URL

Options:
  --stems <list>       stems to write, comma-separated: drums,bass,other,vocals (default: all four)
  --two-stems vocals   write vocals and accompaniment (the sum of the others)
  --format <f>         wav16 (default), wav24, f32, flac or mp3
  --shifts <n>         random time shifts averaged, 1..10 (default 1: none; slower, slightly better)
  --overlap <x>        overlap between model segments, 0..0.9 (default 0.25)
  --format wav         WAV at the input's bit depth (16, 24 or 32-bit float)
  --clip <mode>        rescale (default) or clamp, for peaks above full scale
                       (with clamp the stems can be heard while the job runs)
  --sample-rate <r>    input (default: the input's own rate) or 44100
  --residual           put what the model left out into other (accompaniment), so the
                       stems add up to the mix
  --start <sec>        separate from this second only (a preview window)
  --duration <sec>     separate only this many seconds
  --quality <q>        fast (int8 weights, about 1.3× faster, the same separation within
                       0.1 dB) or full (the published fp32 weights); default: the server's
                       DEFAULT_QUALITY (separate: fast)
  --out <dir>          where to write the stems (default: ./separated/<file name>/)
  --api <url>          submit: the gateway (default: $STEMFLOW_API or http://localhost:8000)
  --key <key>          submit: an API key (default: $STEMFLOW_API_KEY)
  --url <url>          submit: the server fetches the song from this http(s) URL (no <file>)
  --callback-url <url> submit: the server also POSTs the job's end there (a signed webhook)
  --idempotency-key <k>
                       submit: the key that makes a retried submit return the same job
                       (default: a new one per run; the upload is retried with it on a network error)
  --device <d>         separate: auto (default), cpu or cuda
  --threads <n>        separate: ONNX Runtime threads per engine (default: one engine per core,
                       as many as half the memory holds, the cores shared out among them)
  --quiet              no progress bar
  -h, --help           this text
`;

export class UsageError extends Error {}

export type CommonArgs = { file: string; options: JobOptions; out: string | undefined; quiet: boolean };

export async function main(argv: string[], io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...OPTION_FLAGS,
        out: { type: 'string', short: 'o' },
        api: { type: 'string' },
        key: { type: 'string' },
        url: { type: 'string' },
        'callback-url': { type: 'string' },
        'idempotency-key': { type: 'string' },
        device: { type: 'string' },
        threads: { type: 'string' },
        quiet: { type: 'boolean', short: 'q', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    const [command, file, ...rest] = positionals;
    if (values.help || !command) {
      io.stdout.write(USAGE);
      return values.help ? 0 : 2;
    }
    if (command !== 'separate' && command !== 'submit') throw new UsageError(`unknown command "${command}" (separate or submit)`);
    const byUrl = command === 'submit' ? values.url : undefined;
    if (command === 'separate') for (const f of ['url', 'callback-url', 'idempotency-key'] as const) if (values[f] !== undefined) throw new UsageError(`--${f} is for submit (separate runs here, with no server)`);
    if (byUrl !== undefined && !/^https?:\/\//.test(byUrl)) throw new UsageError(`--url must be an http(s) URL (got "${byUrl}")`);
    if (byUrl !== undefined && file) throw new UsageError('a file or --url, not both');
    if (!file && byUrl === undefined) throw new UsageError(`${command}: which file? (stemflow ${command} <file>${command === 'submit' ? ', or --url <url>' : ''})`);
    if (rest.length) throw new UsageError(`one file at a time (got also ${rest.join(', ')})`);
    const common: CommonArgs = { file: file ?? '', options: jobOptions(values), out: values.out, quiet: values.quiet };
    if (command === 'separate') {
      const device = values.device ?? 'auto';
      if (device !== 'auto' && device !== 'cpu' && device !== 'cuda') throw new UsageError(`--device must be auto, cpu or cuda (got "${device}")`);
      return await separateCommand({ ...common, device, threads: integer('--threads', values.threads, 0) }, io);
    }
    const api = values.api ?? process.env.STEMFLOW_API ?? 'http://localhost:8000';
    if (!/^https?:\/\//.test(api)) throw new UsageError(`--api must be an http(s) URL (got "${api}")`);
    const callback = values['callback-url'];
    if (callback !== undefined && !/^https?:\/\//.test(callback)) throw new UsageError(`--callback-url must be an http(s) URL (got "${callback}")`);
    const idem = values['idempotency-key'];
    if (idem !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idem)) throw new UsageError('--idempotency-key must be 1 to 255 visible ASCII characters');
    return await submitCommand({ ...common, api: api.replace(/\/+$/, ''), key: values.key ?? process.env.STEMFLOW_API_KEY, url: byUrl, callbackUrl: callback, idempotencyKey: idem ?? randomUUID() }, io);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`stemflow: ${(err as Error).message}\nRun "stemflow --help" for the options.\n`);
      return 2;
    }
    io.stderr.write(`stemflow: ${(err as Error).message}\n`);
    return 1;
  }
}

const integer = (flag: string, v: string | undefined, dflt: number) => {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} must be a whole number (got "${v}")`);
  return Number(v);
};

/** The flags as job options, checked by the same schema the gateway uses. */
export function jobOptions(v: Record<string, string | boolean | undefined>): JobOptions {
  const text = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const fields: OptionFields = {};
  for (const field of OPTION_NAMES) {
    const t = v[flagOf(field)] === true ? 'true' : text(flagOf(field));
    if (t !== undefined) fields[field] = t;
  }
  const r = JobOptions.safeParse(optionsFromFields(fields));
  if (!r.success) {
    const flag = (p: PropertyKey | undefined) => `--${flagOf(String(p ?? 'options'))}`;
    throw new UsageError(r.error.issues.map((i) => `${flag(i.path[0])}: ${i.message}`).join('; '));
  }
  return r.data;
}
