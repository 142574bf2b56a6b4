export * from './ffmpeg.js';
export * from './dsp.js';
