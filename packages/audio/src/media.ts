/**
 * Which inputs ffmpeg may read, and how. ffmpeg is a parser of hundreds of formats, and some of
 * them open further files or URLs: an HLS or DASH playlist, an `ffconcat` script, an image
 * sequence, `tee`, `subfile`, a QuickTime reference movie. Left to probe a client's bytes itself,
 * ffmpeg picks such a demuxer for a playlist dressed as an MP3 (an ID3 tag in front) and follows
 * its entries: another job's audio, or any URL the decoder can reach.
 *
 * So stemflow never lets ffmpeg choose. The container is identified from the file's own bytes
 * (file-type's magic numbers), mapped through the allowlist below to exactly one demuxer that
 * reads a single self-contained file, and that demuxer is passed with `-f`; the protocols are
 * limited to the one the store needs. A format missing here is refused (415 at upload).
 */
import { fileTypeFromBuffer } from 'file-type';
import { StemflowError } from '@stemflow/contracts';

/** Bytes of the head that identify a container. */
export const SNIFF_BYTES = 4100;

/**
 * Sniffed MIME type → the one ffmpeg demuxer allowed to read it (`-f`), and input options that
 * keep that demuxer to the file itself. Every demuxer here reads one file and opens nothing else.
 */
const DEMUXERS: Record<string, { demuxer: string; options?: string[] }> = {
  'audio/mpeg': { demuxer: 'mp3' },
  'audio/flac': { demuxer: 'flac' },
  'audio/wav': { demuxer: 'wav' },
  'audio/aiff': { demuxer: 'aiff' },
  'audio/ogg': { demuxer: 'ogg' },
  'audio/ogg; codecs=opus': { demuxer: 'ogg' },
  'audio/opus': { demuxer: 'ogg' },
  'application/ogg': { demuxer: 'ogg' },
  'video/ogg': { demuxer: 'ogg' },
  'audio/aac': { demuxer: 'aac' },
  'audio/amr': { demuxer: 'amr' },
  'audio/ape': { demuxer: 'ape' },
  'audio/wavpack': { demuxer: 'wv' },
  'audio/vnd.dolby.dd-raw': { demuxer: 'ac3' },
  'audio/x-caf': { demuxer: 'caf' },
  'audio/x-dsf': { demuxer: 'dsf' },
  'audio/x-voc': { demuxer: 'voc' },
  'audio/qcelp': { demuxer: 'qcp' },
  'audio/x-ms-asf': { demuxer: 'asf' },
  'video/x-ms-asf': { demuxer: 'asf' },
  // QuickTime/MP4 can point at media in other files ("data references"): never followed.
  'audio/mp4': { demuxer: 'mov', options: ['-enable_drefs', '0'] },
  'audio/x-m4a': { demuxer: 'mov', options: ['-enable_drefs', '0'] },
  'video/mp4': { demuxer: 'mov', options: ['-enable_drefs', '0'] },
  'video/x-m4v': { demuxer: 'mov', options: ['-enable_drefs', '0'] },
  'video/quicktime': { demuxer: 'mov', options: ['-enable_drefs', '0'] },
  'video/3gpp': { demuxer: 'mov', options: ['-enable_drefs', '0'] },
  'video/3gpp2': { demuxer: 'mov', options: ['-enable_drefs', '0'] },
  'video/matroska': { demuxer: 'matroska' },
  'video/webm': { demuxer: 'matroska' },
  'video/vnd.avi': { demuxer: 'avi' },
  'video/mpeg': { demuxer: 'mpeg' },
  'video/MP1S': { demuxer: 'mpeg' },
  'video/MP2P': { demuxer: 'mpeg' },
  'video/mp2t': { demuxer: 'mpegts' },
  'video/x-flv': { demuxer: 'flv' },
};

export type MediaType = { mime: string; ext: string; demuxer: string; demuxerOptions: string[] };

/**
 * Identifies a container from its first bytes ({@link SNIFF_BYTES} are enough) and returns the
 * demuxer that may read it; UNSUPPORTED_MEDIA_TYPE (415) for anything else.
 */
export async function sniffMedia(head: Uint8Array): Promise<MediaType> {
  const type = await fileTypeFromBuffer(head);
  const allowed = type ? DEMUXERS[type.mime] : undefined;
  if (!type || !allowed) {
    throw new StemflowError(
      'UNSUPPORTED_MEDIA_TYPE',
      type
        ? type.mime.startsWith('audio/') || type.mime.startsWith('video/')
          ? `the file is ${type.mime} (${type.ext}), which this server does not decode`
          : `the file is ${type.mime} (${type.ext}), not audio or video`
        : 'the file is not audio or video (its content matches no known audio or video format)',
      { status: 415 },
    );
  }
  return { mime: type.mime, ext: type.ext, demuxer: allowed.demuxer, demuxerOptions: allowed.options ?? [] };
}

/** Where ffmpeg reads an input, and with which protocols: exactly the one the source needs. */
export type MediaSource = {
  /** A local path, or an http(s) URL (a presigned object URL). */
  location: string;
  media: Pick<MediaType, 'demuxer' | 'demuxerOptions'>;
};

/**
 * The input arguments for ffmpeg/ffprobe: the allowed demuxer, the protocols of this source alone
 * (a path is read as `file:`, so no part of it is taken for a protocol), then `-i`.
 */
export function inputArgs(src: MediaSource): string[] {
  const url = /^https?:\/\//i.test(src.location) ? new URL(src.location) : undefined;
  const protocols = !url ? 'file' : url.protocol === 'https:' ? 'https,tls,tcp' : 'http,tcp';
  const location = url ? src.location : `file:${src.location}`;
  return ['-protocol_whitelist', protocols, '-f', src.media.demuxer, ...src.media.demuxerOptions, '-i', location];
}

/** The sniffer a stored input is typed with (uploads and imports): the decoder's own allowlist, so a refusal comes before decoding. */
export const AUDIO_SNIFFER = { bytes: SNIFF_BYTES, type: async (head: Buffer) => (await sniffMedia(head)).mime };
