/**
 * The gzip tar stream of a planned build context: streamed, never the whole context in memory;
 * compressed at a fast level where that buys bytes, stored where the data looks random
 * (adaptive-gzip.ts).
 */
import { constants as fsc, type ReadStream } from "node:fs";
import { open, readFile } from "node:fs/promises";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import tarStream from "tar-stream";
import { adaptiveGzip, DEFAULT_GZIP_LEVEL } from "./adaptive-gzip.js";
import { own, release } from "./owned-buffers.js";
import type { ContextEntry, ContextPlan } from "./plan.js";
import { InputError, messageOf } from "../errors.js";

/** A file that became a symlink after the walk is not followed (it would be read from outside). */
const READ_NOFOLLOW = fsc.O_RDONLY | fsc.O_NOFOLLOW;

/** Files up to this size are read whole (and a few ahead); larger ones are streamed. */
const SMALL_FILE = 512 * 1024;
const PREFETCH_FILES = 16;
const PREFETCH_BYTES = 8 * 1024 * 1024;

const COALESCE = 64 * 1024;

function coalescer(): Transform {
  let parts: Buffer[] = [];
  let size = 0;
  /** The gathered chunks as one buffer of this pipeline's; the file reads in it are done. */
  const join = (): Buffer => {
    const out = own(Buffer.concat(parts, size));
    for (const part of parts) release(part);
    parts = [];
    size = 0;
    return out;
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (size === 0 && chunk.length >= COALESCE) return callback(null, chunk);
      parts.push(chunk);
      size += chunk.length;
      if (size < COALESCE) return callback();
      callback(null, join());
    },
    flush(callback) {
      callback(null, size ? join() : undefined);
    },
  });
}

type TarHeader = Parameters<ReturnType<typeof tarStream.pack>["entry"]>[0];

/** Who owns the unpacked files in the pod (the receiver unpacks as root and keeps the archive's owner). */
export interface WorkspaceOwner {
  uid: number;
  gid: number;
}

function headerFor(entry: ContextEntry, owner: WorkspaceOwner): TarHeader {
  // tar-stream replaces a falsy mode with its default: keep a 0 mode by adding the type bits
  // (the header keeps only the low 12 bits).
  const typeBits =
    entry.type === "directory" ? fsc.S_IFDIR : entry.type === "symlink" ? fsc.S_IFLNK : fsc.S_IFREG;
  return {
    name: entry.type === "directory" ? `${entry.path}/` : entry.path,
    type: entry.type,
    mode: entry.mode | typeBits,
    uid: owner.uid,
    gid: owner.gid,
    mtime: entry.mtime,
    size: entry.type === "file" ? entry.size : 0,
    ...(entry.type === "symlink" ? { linkname: entry.linkTarget ?? "" } : {}),
  };
}

class ChangedError extends InputError {
  constructor(rel: string) {
    super(
      "context",
      `${rel} changed while it was being sent (it is smaller than when the context was planned)`,
    );
  }
}

/** A gzip tar of exactly the planned entries, streamed (never the whole context in memory), with progress. */
export function tarContext(
  plan: ContextPlan,
  opts: {
    onProgress?: (p: { files: number; bytes: number }) => void;
    /** Level for compressible data (default 1); data that looks random is stored, whatever it is. */
    gzipLevel?: number;
    /** Default root: a builder running as another user must be able to read a 0600 file. */
    owner?: WorkspaceOwner;
  } = {},
): Readable {
  const owner = opts.owner ?? { uid: 0, gid: 0 };
  const pack = tarStream.pack();
  const compressor = adaptiveGzip(opts.gzipLevel ?? DEFAULT_GZIP_LEVEL);
  const gzip = compressor.output;
  const abort = new AbortController();
  let current: ReadStream | null = null;
  let stopped = false;

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    abort.abort();
    current?.destroy();
    if (!pack.destroyed) pack.destroy();
  };
  gzip.once("close", stop);
  // Headers and small files arrive as many small buffers; each write into zlib is a threadpool
  // round trip, so hand it at least COALESCE bytes at a time.
  const coalesce = coalescer();
  coalesce.on("error", (error: Error) => gzip.destroy(error));
  coalesce.pipe(compressor.input);
  compressor.input.on("error", (error: Error) => gzip.destroy(error));
  pack.pipe(coalesce, (error?: Error | null) => {
    if (error && !gzip.destroyed) gzip.destroy(error);
  });
  gzip.once("close", () => {
    coalesce.destroy();
    compressor.input.destroy();
  });

  const entryDone = (header: TarHeader, body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      const cb = (error?: Error | null): void => (error ? reject(error) : resolve());
      if (body) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });

  // Small files are read whole, a few ahead of the writer, so disk and gzip overlap.
  const prefetched = new Map<number, Promise<Buffer>>();
  let prefetchNext = 0;
  let prefetchBytes = 0;
  const isSmall = (e: ContextEntry): boolean => e.type === "file" && e.size <= SMALL_FILE;
  const fill = (from: number): void => {
    if (prefetchNext < from) prefetchNext = from;
    while (
      prefetchNext < plan.entries.length &&
      prefetchNext < from + PREFETCH_FILES &&
      prefetchBytes < PREFETCH_BYTES &&
      !stopped
    ) {
      const e = plan.entries[prefetchNext];
      if (e.type === "file" && !isSmall(e)) break; // a large file is streamed in turn
      if (isSmall(e)) {
        const p = readFile(path.join(plan.dir, e.path), {
          signal: abort.signal,
          flag: READ_NOFOLLOW,
        });
        p.catch(() => {}); // observed when its turn comes
        prefetched.set(prefetchNext, p);
        prefetchBytes += e.size;
      }
      prefetchNext++;
    }
  };

  const writeLarge = async (e: ContextEntry, header: TarHeader): Promise<void> => {
    let sinkError: Error | null = null;
    const sink = pack.entry(header, (error?: Error | null) => {
      if (error) sinkError = error;
    });
    const finished = new Promise<void>((resolve, reject) => {
      sink.once("close", () => (sinkError ? reject(sinkError) : resolve()));
      sink.once("error", (error: Error) => {
        sinkError ??= error;
      });
    });
    finished.catch(() => {});
    const handle = await open(path.join(plan.dir, e.path), READ_NOFOLLOW);
    const rs = handle.createReadStream({
      start: 0,
      end: Math.max(0, e.size - 1),
      highWaterMark: 64 * 1024,
    });
    current = rs;
    let written = 0;
    try {
      if (e.size > 0) {
        for await (const chunk of rs as AsyncIterable<Buffer>) {
          if (stopped) break;
          written += chunk.length;
          if (!sink.write(own(chunk))) {
            await new Promise<void>((resolve) => {
              const done = (): void => {
                sink.off("drain", done);
                sink.off("close", done);
                resolve();
              };
              sink.on("drain", done);
              sink.on("close", done);
            });
          }
          if (stopped || sinkError) break;
        }
      }
    } finally {
      current = null;
      if (!rs.destroyed) rs.destroy();
    }
    if (stopped) return;
    if (written < e.size) {
      const error = new ChangedError(e.path);
      sink.destroy(error);
      throw error;
    }
    sink.end(undefined);
    await finished;
  };

  const run = async (): Promise<void> => {
    let files = 0;
    let bytes = 0;
    for (let i = 0; i < plan.entries.length; i++) {
      if (stopped) return;
      const e = plan.entries[i];
      const header = headerFor(e, owner);
      if (isSmall(e)) {
        fill(i);
        const pending = prefetched.get(i);
        prefetched.delete(i);
        // Read for this stream alone: freed once it is joined or compressed (owned-buffers.ts).
        let body = own(
          await (pending ??
            readFile(path.join(plan.dir, e.path), { signal: abort.signal, flag: READ_NOFOLLOW })),
        );
        prefetchBytes -= pending ? e.size : 0;
        if (stopped) return;
        if (body.length < e.size) throw new ChangedError(e.path);
        if (body.length > e.size) body = body.subarray(0, e.size);
        await entryDone(header, body);
      } else if (e.type === "file") {
        await writeLarge(e, header);
      } else {
        await entryDone(header);
      }
      if (e.type === "file") {
        files++;
        bytes += e.size;
        opts.onProgress?.({ files, bytes });
      }
      fill(i + 1);
    }
    if (!stopped) pack.finalize();
  };

  run().catch((error: unknown) => {
    if (stopped) return;
    const err =
      error instanceof InputError
        ? error
        : new InputError("context", `reading the context failed: ${messageOf(error)}`);
    gzip.destroy(err);
  });

  return gzip;
}
