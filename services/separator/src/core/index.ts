export { HtdemucsEngine, STEMS, CH } from './engine.js';
export { planChunks, triangle, type Chunk } from './plan.js';
export { runPass, PLANES, type MixReader, type PassView, type Carry, type Region } from './pass.js';
export { MODEL_NICE, QualityRunner, RunWithdrawn, workerRunner, inProcessRunner, supervisedRunner, type ModelRunner, type SupervisedRunner, type WorkerRunner } from './runner.js';
export { ModelPool } from './model-pool.js';
