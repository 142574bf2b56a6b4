export { HtdemucsEngine, STEMS, CH } from './engine.js';
export { planChunks, triangle, type Chunk } from './plan.js';
export { runPass, warmUp, PLANES, type MixReader, type PassView, type Carry, type Region } from './pass.js';
export { MODEL_NICE, RunWithdrawn, workerRunner, inProcessRunner, type ModelRunner, type WorkerRunner } from './runner.js';
export { QualityRunner, supervisedRunner, type SupervisedRunner } from './supervised-runner.js';
export { ModelPool } from './model-pool.js';
