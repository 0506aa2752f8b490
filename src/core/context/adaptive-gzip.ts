/**
 * One gzip stream, compressed in parallel and at a level that follows the data (the way pigz
 * compresses): the uncompressed stream is cut into the chunks it arrives in (64 KiB and up), each
 * chunk is deflated on its own in libuv's threadpool — at a fast level when it looks compressible,
 * as stored blocks (level 0, a copy) when it looks like random bytes (compressed files, images,
 * archives) — with the 32 KiB before it as its dictionary, so matches across chunks are kept,
 * and ended with a sync flush so the pieces join into one deflate stream. Several chunks are in
 * flight at once, so compression uses every core while the main thread reads files and sends.
 * The gzip header, CRC-32 and length are written here: the output is one ordinary gzip member
 * that any gunzip — the receiver's stock busybox tar — reads.
 */
import { promisify } from "node:util";
import { Readable, Writable } from "node:stream";
import { constants, crc32, deflateRaw, type ZlibOptions } from "node:zlib";
import { own, release } from "./owned-buffers.js";

const deflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(deflateRaw);

/** The level for data worth compressing: deflate's fastest, about 4× level 6's speed. */
export const DEFAULT_GZIP_LEVEL = 1;

const SAMPLE_BYTES = 512;
const SAMPLES = 4;
/** Shannon entropy (bits per byte) above which a 512-byte sample is taken for random data. */
const RANDOM_SAMPLE_BITS = 7.0;
/** Chunks smaller than this are compressed: too few bytes to judge, too few to matter. */
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
  /** The gzip bytes. Destroying it stops the compressor. */
  output: Readable;
  /** Bytes written at level 0 (stored) and at the compression level, so far. */
  stats: { storedBytes: number; compressedBytes: number; levelChanges: number };
}

/** Deflate's window: a segment's dictionary is this much of the stream before it. */
const WINDOW = 32 * 1024;
/** Consecutive chunks of one kind are deflated together, up to this size. */
const SEGMENT = 256 * 1024;
/** Segments being deflated at once (libuv's threadpool has 4 threads by default). */
const IN_FLIGHT = 4;
/** A stored block holds at most this many bytes. */
const STORED_BLOCK = 65535;
/** gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unix. */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
/** A final, empty fixed-Huffman block: ends the deflate stream after the sync-flushed segments. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/**
 * Data as deflate stored blocks, written here: no compressor needed. Each block starts on a byte
 * boundary (after a sync flush, or another stored block): a header byte (not final, type 00),
 * then LEN and its one's complement, then the bytes.
 */
export function storedBlocks(parts: readonly Buffer[]): Buffer {
  let blocks = 0;
  let bytes = 0;
  for (const part of parts) {
    blocks += Math.ceil(part.length / STORED_BLOCK);
    bytes += part.length;
  }
  if (blocks === 0) return Buffer.from([0, 0, 0, 0xff, 0xff]);
  const out = Buffer.allocUnsafe(bytes + blocks * 5);
  let at = 0;
  for (const part of parts) {
    for (let offset = 0; offset < part.length; offset += STORED_BLOCK) {
      const size = Math.min(STORED_BLOCK, part.length - offset);
      out[at] = 0;
      out.writeUInt16LE(size, at + 1);
      out.writeUInt16LE(~size & 0xffff, at + 3);
      part.copy(out, at + 5, offset, offset + size);
      at += 5 + size;
    }
  }
  return out;
}

/** The last WINDOW bytes of the stream after `parts`, in a buffer of their own. */
export function windowAfter(window: Buffer, parts: readonly Buffer[]): Buffer {
  let total = window.length;
  for (const part of parts) total += part.length;
  const size = Math.min(WINDOW, total);
  const next = own(Buffer.allocUnsafeSlow(size));
  let at = size;
  for (let i = parts.length - 1; i >= -1 && at > 0; i--) {
    const from = i >= 0 ? parts[i]! : window;
    const take = Math.min(at, from.length);
    at -= take;
    from.copy(next, at, from.length - take);
  }
  return next;
}

/**
 * zlib's output as a buffer of its own size, which the upload frees once it is sent: text
 * deflates to a few KB, and zlib's output buffer is the size of the input.
 */
function exactCopy(out: Buffer): Buffer {
  if (out.buffer.byteLength < out.length * 2) return own(out);
  const copy = own(Buffer.allocUnsafeSlow(out.length));
  out.copy(copy);
  return copy;
}

export function adaptiveGzip(level = DEFAULT_GZIP_LEVEL): AdaptiveGzip {
  const stats = { storedBytes: 0, compressedBytes: 0, levelChanges: 0 };
  let crc = 0;
  let length = 0;
  /** The last WINDOW bytes before the segment being gathered. */
  let window: Buffer = Buffer.alloc(0);
  let current = level;
  let headerSent = false;
  /** The segment being gathered: chunks of one kind. */
  let segment: Buffer[] = [];
  let segmentBytes = 0;
  /** Deflated segments in stream order; the head is pushed out first. */
  const pending: Promise<Buffer>[] = [];
  let wakeReader: (() => void) | undefined;

  const output = new Readable({
    highWaterMark: 256 * 1024,
    read() {
      const wake = wakeReader;
      wakeReader = undefined;
      wake?.();
    },
  });
  const readerWants = (): Promise<void> =>
    new Promise((resolve) => {
      wakeReader = resolve;
    });
  /** Pushes the oldest deflated segment, waiting while the reader is full. */
  const shiftOne = async (): Promise<void> => {
    const deflated = await pending.shift()!;
    if (output.destroyed) throw new Error("the gzip stream was closed");
    if (!headerSent) {
      headerSent = true;
      output.push(GZIP_HEADER);
    }
    if (!output.push(deflated)) await readerWants();
  };
  /** Starts deflating the gathered segment (stored blocks need no deflate). */
  const dispatch = (): void => {
    if (segmentBytes === 0) return;
    const parts = segment;
    const bytes = segmentBytes;
    segment = [];
    segmentBytes = 0;
    // This segment's dictionary is the window before it; the next one's ends where this one does.
    const dictionary = window;
    window = windowAfter(dictionary, parts);
    if (current === 0) {
      // Copied once, into the blocks: no concatenation first.
      pending.push(Promise.resolve(own(storedBlocks(parts))));
      for (const part of parts) release(part);
      release(dictionary);
    } else {
      const data = parts.length === 1 ? parts[0]! : own(Buffer.concat(parts, bytes));
      if (data !== parts[0]) for (const part of parts) release(part);
      const job = deflateRawAsync(data, {
        level: current,
        // Room for the whole output in one buffer: zlib's default 16 KiB chunks would be joined
        // into a copy afterwards (deflate's bound at level 1: n + n/1000 + a few bytes).
        chunkSize: data.length + (data.length >> 9) + 64,
        finishFlush: constants.Z_SYNC_FLUSH,
        ...(dictionary.length > 0 ? { dictionary } : {}),
      }).then(exactCopy);
      job.catch(() => {}); // observed when its turn comes
      // zlib has read the input and the dictionary once the job settles.
      const done = (): void => {
        release(data);
        release(dictionary);
      };
      void job.then(done, done);
      pending.push(job);
    }
  };

  const input = new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      if (output.destroyed) return callback(new Error("the gzip stream was closed"));
      const wanted = level > 0 && looksIncompressible(chunk) ? 0 : level;
      if (wanted === 0) stats.storedBytes += chunk.length;
      else stats.compressedBytes += chunk.length;
      if (wanted !== current) {
        stats.levelChanges++;
        dispatch();
        current = wanted;
      }
      crc = crc32(chunk, crc);
      length = (length + chunk.length) % 2 ** 32;
      segment.push(chunk);
      segmentBytes += chunk.length;
      if (segmentBytes >= SEGMENT) dispatch();
      if (pending.length < IN_FLIGHT) return callback();
      shiftOne().then(() => callback(), callback);
    },
    final(callback) {
      const finish = async (): Promise<void> => {
        dispatch();
        while (pending.length > 0) await shiftOne();
        if (!headerSent) {
          headerSent = true;
          output.push(GZIP_HEADER);
        }
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(crc >>> 0, 0);
        trailer.writeUInt32LE(length >>> 0, 4);
        output.push(Buffer.concat([FINAL_BLOCK, trailer]));
        output.push(null);
      };
      finish().then(() => callback(), callback);
    },
    destroy(error, callback) {
      if (error && !output.destroyed) output.destroy(error);
      callback(error);
    },
  });
  output.once("close", () => {
    const wake = wakeReader;
    wakeReader = undefined;
    wake?.();
  });
  return { input, output, stats };
}
