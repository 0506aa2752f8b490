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
import { Writable } from "node:stream";
import { constants, createGzip, type Gzip, type ZlibParams } from "node:zlib";

/** The level for data worth compressing: deflate's fastest, about 4× level 6's speed. */
export const DEFAULT_GZIP_LEVEL = 1;

const SAMPLE_BYTES = 512;
const SAMPLES = 4;
/** Shannon entropy (bits per byte) above which a sample is taken for random data. */
const INCOMPRESSIBLE_BITS = 7.2;
/** Below this a chunk is not worth a level change (the flush costs more than it saves). */
const MIN_CLASSIFIED = 16 * 1024;

/**
 * Whether a chunk looks like random bytes: the byte entropy of a few samples spread over it.
 * Text and code are near 4.5–5.5 bits per byte, executables near 6, compressed data near 8; a
 * 512-byte sample of random bytes measures about 7.6.
 */
export function looksIncompressible(chunk: Uint8Array): boolean {
  if (chunk.length < MIN_CLASSIFIED) return false;
  const counts = new Uint32Array(256);
  const stride = Math.floor((chunk.length - SAMPLE_BYTES) / (SAMPLES - 1));
  for (let s = 0; s < SAMPLES; s++) {
    const start = s * stride;
    for (let i = start; i < start + SAMPLE_BYTES; i++) counts[chunk[i]!]!++;
  }
  const total = SAMPLE_BYTES * SAMPLES;
  let bits = 0;
  for (const count of counts) {
    if (count === 0) continue;
    const p = count / total;
    bits -= p * Math.log2(p);
  }
  return bits > INCOMPRESSIBLE_BITS;
}

export interface AdaptiveGzip {
  /** Write the uncompressed bytes here. */
  input: Writable;
  /** The gzip stream. */
  output: Gzip;
  /** Bytes written at level 0 (stored) and at the compression level, so far. */
  stats: { storedBytes: number; compressedBytes: number; levelChanges: number };
}

export function adaptiveGzip(level = DEFAULT_GZIP_LEVEL): AdaptiveGzip {
  const output = createGzip({ level, chunkSize: 64 * 1024 });
  const stats = { storedBytes: 0, compressedBytes: 0, levelChanges: 0 };
  let current = level;
  const whenWritable = (callback: (error?: Error | null) => void): void => {
    const done = (): void => {
      output.off("drain", done);
      output.off("close", done);
      callback(output.destroyed && !output.writableFinished ? new Error("gzip closed") : null);
    };
    output.on("drain", done);
    output.on("close", done);
  };
  const input = new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      const wanted = level > 0 && looksIncompressible(chunk) ? 0 : level;
      if (wanted === 0) stats.storedBytes += chunk.length;
      else stats.compressedBytes += chunk.length;
      const send = (): void => {
        if (output.destroyed) return callback(new Error("gzip closed"));
        if (output.write(chunk)) callback();
        else whenWritable(callback);
      };
      if (wanted === current) return send();
      current = wanted;
      stats.levelChanges++;
      // params() queues a sync flush behind the writes so far and applies the level once it is
      // done; nothing more is written until then, so each byte goes in at the level chosen for it.
      // Gzip has deflate's params() at run time; @types/node declares it on Deflate only.
      (output as Gzip & ZlibParams).params(wanted, constants.Z_DEFAULT_STRATEGY, send);
    },
    final(callback) {
      output.end();
      callback();
    },
    destroy(error, callback) {
      if (error && !output.destroyed) output.destroy(error);
      callback(error);
    },
  });
  return { input, output, stats };
}
