export * from './ffmpeg.js';
