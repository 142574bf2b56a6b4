/** `node --import tsx test/engines/gateway/contract/serve-tiny.ts PORT`: the tiny stack with API keys, until killed (for running a fuzzer by hand). */
import { tinyStack } from '../../../support/tiny-stack.js';

const s = await tinyStack({ port: Number(process.argv[2] ?? 0), apiKeys: ['fuzz-key', 'other-key'], webhookSecret: 'x'.repeat(32), importing: { timeoutMs: 3000 }, logLevel: 'warn' });
process.stdout.write(`${s.url}\n`);
process.on('SIGTERM', () => void s.close().then(() => process.exit(0)));
