/**
 * Buffers of the context upload that this pipeline allocated (file reads, joined chunks, stored
 * blocks, websocket frames), freed the moment their last reader is done with them.
 *
 * V8 frees a Buffer's memory only at a garbage collection, and memory outside its heap triggers
 * one late: a 190 MB context, read, joined, deflated and framed into new buffers, kept 50–60 MB
 * of dead buffers in glibc's arena at the peak (bench/build-memory.mjs: 188 MB peak RSS against
 * 124 MB with a collection every 20 ms). Detaching the ArrayBuffer (`transfer(0)`) frees it at
 * once. Only buffers registered here are ever freed, and only whole ones: a view into memory that
 * something else may share (Node's small-buffer pool, zlib's output, a library's constants) is
 * never registered.
 */
const owned = new WeakSet<Uint8Array>();

/** Registers a buffer this pipeline allocated and hands on alone; returns it. */
export function own<T extends Uint8Array>(buffer: T): T {
  const memory = buffer.buffer;
  if (
    memory instanceof ArrayBuffer &&
    buffer.byteOffset === 0 &&
    buffer.byteLength === memory.byteLength &&
    buffer.byteLength > 0
  ) {
    owned.add(buffer);
  }
  return buffer;
}

/**
 * Frees a registered buffer: its last reader is done with it. Anything else is left to the
 * garbage collector.
 */
export function release(buffer: Uint8Array): void {
  if (!owned.delete(buffer)) return;
  const memory = buffer.buffer as ArrayBuffer;
  if (!memory.detached) memory.transfer(0);
}

export function isOwned(buffer: Uint8Array): boolean {
  return owned.has(buffer);
}
