export * from './ffmpeg.js';
export * from './dsp.js';
export * from './media.js';
export * from './encode.js';
export * from './plan.js';
export * from './render.js';
export * from './wav.js';
export * from './mp3.js';
