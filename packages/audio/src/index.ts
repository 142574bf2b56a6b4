export * from './ffmpeg.js';
export * from './media.js';
export * from './encode.js';
export * from './render.js';
export * from './wav.js';
export * from './mp3.js';
