/** Only buffers the context pipeline registered are freed, and only whole ones. */
import { isOwned, own, release } from "../../src/core/context/owned-buffers.js";

describe("owned buffers", () => {
  test("a registered buffer is freed at once: its memory goes back, its length is 0", () => {
    const buffer = own(Buffer.allocUnsafeSlow(256 * 1024).fill(7));
    expect(isOwned(buffer)).toBe(true);
    const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
    release(buffer);
    expect(buffer.length).toBe(0);
    expect(buffer.buffer.detached).toBe(true);
    expect(process.memoryUsage().arrayBuffers).toBeLessThanOrEqual(arrayBuffersBefore - 256 * 1024);
    release(buffer); // twice is nothing
  });

  test("buffers nobody registered are left alone", () => {
    const buffer = Buffer.from("a caller's bytes");
    release(buffer);
    expect(buffer.toString()).toBe("a caller's bytes");
  });

  test("views into shared memory are never registered: a slice, Node's small-buffer pool", () => {
    const whole = Buffer.allocUnsafeSlow(64 * 1024).fill(1);
    const slice = own(whole.subarray(0, 1024));
    const pooled = own(Buffer.from("pooled"));
    expect(isOwned(slice)).toBe(false);
    expect(isOwned(pooled)).toBe(false);
    release(slice);
    release(pooled);
    expect(whole.length).toBe(64 * 1024);
    expect(pooled.toString()).toBe("pooled");
  });
});
