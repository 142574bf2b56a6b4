/** `node --import tsx models/scripts/derived.ts`: for infra/models.sh, one line per graph made from the published weights: source, destination, sha256, bytes. */
import { HTDEMUCS, HTDEMUCS_FAST, modelPath } from '../src/index.js';

process.stdout.write(`${modelPath(HTDEMUCS)} ${modelPath(HTDEMUCS_FAST)} ${HTDEMUCS_FAST.sha256} ${HTDEMUCS_FAST.bytes}\n`);
