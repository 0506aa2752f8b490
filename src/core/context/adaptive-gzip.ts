/**
 * One gzip stream whose deflate level follows the data: chunks that look compressible are
 * compressed at a fast level, chunks that look like random bytes (already compressed files,
 * images, archives) go into stored blocks (level 0), which costs a copy instead of a deflate pass
 * that would buy nothing. A level change is zlib's deflateParams after a sync flush (Node's
 * `zlib.params`): the output stays one ordinary gzip member that any gunzip — the receiver's
 * stock busybox tar — reads.
 *
 * Compression runs in libuv's threadpool (Node's async zlib), off the main thread, which does the
 * file reads, the tar framing, TLS and the websocket.
 */
import { PassThrough, Writable } from "node:stream";
import { constants, createGzip, type Gzip, type ZlibParams } from "node:zlib";

/** The level for data worth compressing: deflate's fastest, about 4× level 6's speed. */
export const DEFAULT_GZIP_LEVEL = 1;

const SAMPLE_BYTES = 512;
const SAMPLES = 4;
/** Shannon entropy (bits per byte) above which a 512-byte sample is taken for random data. */
const RANDOM_SAMPLE_BITS = 7.0;
/** Below this a chunk is not worth a level change (the flush costs more than it saves). */
const MIN_CLASSIFIED = 16 * 1024;

function sampleBits(chunk: Uint8Array, start: number, counts: Uint32Array): number {
  counts.fill(0);
  for (let i = start; i < start + SAMPLE_BYTES; i++) counts[chunk[i]!]!++;
  let bits = 0;
  for (const count of counts) {
    if (count === 0) continue;
    const p = count / SAMPLE_BYTES;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * Whether a chunk looks like random bytes: most of a few 512-byte samples spread over it have the
 * byte entropy of random data. Text and code measure about 4.5–5.5 bits per byte, executables about
 * 6, compressed or encrypted data about 7.6 (the most 512 bytes can show). A chunk that starts with
 * a tar header before a compressed file still counts as random.
 */
export function looksIncompressible(chunk: Uint8Array): boolean {
  if (chunk.length < MIN_CLASSIFIED) return false;
  const counts = new Uint32Array(256);
  const stride = Math.floor((chunk.length - SAMPLE_BYTES) / (SAMPLES - 1));
  let random = 0;
  for (let s = 0; s < SAMPLES; s++) {
    if (sampleBits(chunk, s * stride, counts) > RANDOM_SAMPLE_BITS) random++;
  }
  return random * 2 > SAMPLES;
}

export interface AdaptiveGzip {
  /** Write the uncompressed bytes here. */
  input: Writable;
  /** The gzip bytes. Destroying it stops the compressor (once a pending level change is done). */
  output: PassThrough;
  /** Bytes written at level 0 (stored) and at the compression level, so far. */
  stats: { storedBytes: number; compressedBytes: number; levelChanges: number };
}

export function adaptiveGzip(level = DEFAULT_GZIP_LEVEL): AdaptiveGzip {
  const zlib = createGzip({ level, chunkSize: 64 * 1024 }) as Gzip & ZlibParams;
  // Callers get a PassThrough, not the zlib stream: zlib's params() asserts its handle is open when
  // its flush completes, so zlib must not be destroyed while a level change is pending.
  const output = new PassThrough({ highWaterMark: 64 * 1024 });
  zlib.pipe(output);
  zlib.once("error", (error: Error) => output.destroy(error));
  let levelChangePending = false;
  let closing = false;
  const closeZlib = (): void => {
    if (zlib.destroyed) return;
    if (levelChangePending) {
      // Let the pending flush finish (its output goes nowhere), then close.
      closing = true;
      zlib.unpipe(output);
      zlib.resume();
      return;
    }
    zlib.destroy();
  };
  output.once("close", closeZlib);

  const stats = { storedBytes: 0, compressedBytes: 0, levelChanges: 0 };
  let current = level;
  const closedError = (): Error => new Error("the gzip stream was closed");
  const whenWritable = (callback: (error?: Error | null) => void): void => {
    const done = (): void => {
      zlib.off("drain", done);
      zlib.off("close", done);
      callback(zlib.destroyed ? closedError() : null);
    };
    zlib.on("drain", done);
    zlib.on("close", done);
  };
  const input = new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      const wanted = level > 0 && looksIncompressible(chunk) ? 0 : level;
      if (wanted === 0) stats.storedBytes += chunk.length;
      else stats.compressedBytes += chunk.length;
      const send = (): void => {
        if (zlib.destroyed || closing) return callback(closedError());
        if (zlib.write(chunk)) callback();
        else whenWritable(callback);
      };
      if (wanted === current) return send();
      if (zlib.destroyed || closing) return callback(closedError());
      current = wanted;
      stats.levelChanges++;
      levelChangePending = true;
      // params() queues a sync flush behind the writes so far and applies the level once it is
      // done; nothing more is written until then, so each byte goes in at the level chosen for it.
      // (Gzip has deflate's params() at run time; @types/node declares it on Deflate only.)
      zlib.params(wanted, constants.Z_DEFAULT_STRATEGY, () => {
        levelChangePending = false;
        if (closing) {
          zlib.destroy();
          return callback(closedError());
        }
        send();
      });
    },
    final(callback) {
      zlib.end();
      callback();
    },
    destroy(error, callback) {
      if (error && !output.destroyed) output.destroy(error);
      callback(error);
    },
  });
  return { input, output, stats };
}
