/** Compression that follows the data: random bytes stored, text compressed, one gzip stream busybox reads. */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import {
  adaptiveGzip,
  looksIncompressible,
  storedBlocks,
  windowAfter,
} from "../../src/core/context/adaptive-gzip.js";
import { inflateRawSync } from "node:zlib";
import { planContext, tarContext } from "../../src/core/context/index.js";

const TEXT = Buffer.from(
  "export function handler(event) { return { statusCode: 200, body: JSON.stringify(event) }; }\n".repeat(
    2000,
  ),
);

async function compress(parts: Buffer[], level?: number) {
  const gz = adaptiveGzip(level);
  const out: Buffer[] = [];
  gz.output.on("data", (chunk: Buffer) => out.push(chunk));
  const ended = new Promise((resolve) => gz.output.on("end", resolve));
  for (const part of parts) {
    if (!gz.input.write(part)) await new Promise((resolve) => gz.input.once("drain", resolve));
  }
  gz.input.end();
  await ended;
  return { bytes: Buffer.concat(out), stats: gz.stats };
}

describe("adaptive gzip", () => {
  test("classifies random bytes as incompressible, text and zeros as compressible", () => {
    expect(looksIncompressible(randomBytes(64 * 1024))).toBe(true);
    expect(looksIncompressible(TEXT.subarray(0, 64 * 1024))).toBe(false);
    expect(looksIncompressible(Buffer.alloc(64 * 1024))).toBe(false);
    // Too small to be worth a level change.
    expect(looksIncompressible(randomBytes(1024))).toBe(false);
  });

  test("random chunks are stored, text chunks compressed, and the stream round-trips", async () => {
    const random = [randomBytes(256 * 1024), randomBytes(256 * 1024)];
    const text = [TEXT.subarray(0, 128 * 1024), TEXT.subarray(0, 100 * 1024)];
    const parts = [text[0]!, random[0]!, text[1]!, random[1]!];
    const input = Buffer.concat(parts);
    const { bytes, stats } = await compress(parts);
    expect(gunzipSync(bytes).equals(input)).toBe(true);
    expect(stats.storedBytes).toBe(512 * 1024);
    expect(stats.compressedBytes).toBe(228 * 1024);
    // Stored: the random half costs its own size plus block headers; the text shrinks.
    expect(bytes.length).toBeGreaterThan(512 * 1024);
    expect(bytes.length).toBeLessThan(512 * 1024 + 40 * 1024);
    expect(stats.levelChanges).toBe(3);
  });

  test("small chunks: each segment's dictionary is the 32 KiB before it, gathered across chunks and level changes", async () => {
    // Chunks of 1–20 KB (text that repeats from far back, so the dictionary matters), with random
    // 64 KiB chunks in between: windows are built from many parts and from the window before.
    const parts: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const size = 1000 + ((i * 7919) % 19000);
      const start = (i * 4099) % (TEXT.length - size);
      parts.push(TEXT.subarray(start, start + size));
      if (i % 97 === 50) parts.push(randomBytes(64 * 1024));
    }
    const input = Buffer.concat(parts);
    const { bytes, stats } = await compress(parts);
    expect(gunzipSync(bytes).equals(input)).toBe(true);
    expect(stats.levelChanges).toBeGreaterThanOrEqual(6);
  });

  test.each([
    ["no window, one large part", 0, [40_000]],
    ["no window, small parts", 0, [1000, 2000, 3000]],
    ["a window and small parts", 32 * 1024, [1000, 5000, 20]],
    ["a window and parts that fill it exactly", 32 * 1024, [16 * 1024, 16 * 1024]],
    ["a window and a part larger than it", 32 * 1024, [10, 50_000]],
    ["a short window, short parts", 700, [300]],
  ])("the window after a segment: %s", (_name, windowSize, sizes) => {
    const window = randomBytes(windowSize);
    const parts = sizes.map((size) => randomBytes(size));
    const expected = Buffer.concat([window, ...parts]).subarray(-32 * 1024);
    expect(windowAfter(window, parts).equals(expected)).toBe(true);
  });

  test("buffers the caller wrote are left whole: only the pipeline's own are freed", async () => {
    const parts = [TEXT.subarray(0, 200 * 1024), randomBytes(128 * 1024), Buffer.from(TEXT)];
    const copies = parts.map((part) => Buffer.from(part));
    await compress(parts);
    parts.forEach((part, i) => expect(part.equals(copies[i]!)).toBe(true));
  });

  test("several segments deflated in parallel, each with the 32 KiB before it as dictionary, join into one stream busybox reads", async () => {
    // 3 MB of text in 64 KiB chunks (six 512 KiB segments), random chunks between some of them.
    const parts: Buffer[] = [];
    for (let i = 0; i < 48; i++) {
      parts.push(Buffer.from(`${i} `.repeat(8).concat(TEXT.toString("utf8", 0, 64 * 1024 - 40))));
      if (i % 12 === 5) parts.push(randomBytes(200 * 1024));
    }
    const input = Buffer.concat(parts);
    const { bytes, stats } = await compress(parts);
    expect(stats.levelChanges).toBe(8);
    expect(gunzipSync(bytes).equals(input)).toBe(true);
    const viaBusybox = execFileSync("busybox", ["gunzip", "-c"], {
      input: bytes,
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(viaBusybox.equals(input)).toBe(true);
    // The dictionaries keep the text as small as one deflate pass would make it.
    const { deflateRawSync } = await import("node:zlib");
    const onePass = deflateRawSync(Buffer.concat(parts.filter((p) => !looksIncompressible(p))), {
      level: 1,
    }).length;
    expect(bytes.length - 4 * 200 * 1024).toBeLessThan(onePass * 1.1 + 2048);
  });

  test("stored blocks: at most 65535 bytes each, empty input one empty block", () => {
    for (const size of [0, 1, 65535, 65536, 200_000]) {
      const data = randomBytes(size);
      const blocks = storedBlocks(
        size === 0 ? [] : [data.subarray(0, 1000), data.subarray(1000)].filter((p) => p.length > 0),
      );
      expect(blocks.length).toBeGreaterThanOrEqual(size + 5 * Math.max(1, Math.ceil(size / 65535)));
      // A final empty fixed block ends the stream so inflate can read it.
      expect(inflateRawSync(Buffer.concat([blocks, Buffer.from([3, 0])])).equals(data)).toBe(true);
    }
  });

  test("level 0 stores everything", async () => {
    const { bytes, stats } = await compress([TEXT]);
    expect(gunzipSync(bytes).equals(TEXT)).toBe(true);
    expect(stats.storedBytes).toBe(0);
    const stored = await compress([TEXT], 0);
    expect(stored.bytes.length).toBeGreaterThan(TEXT.length);
    expect(gunzipSync(stored.bytes).equals(TEXT)).toBe(true);
  });

  test("destroying the output during a level change closes everything without an error", async () => {
    for (let round = 0; round < 20; round++) {
      const gz = adaptiveGzip();
      const closed = new Promise((resolve) => gz.output.once("close", resolve));
      gz.input.on("error", () => {});
      gz.input.write(TEXT);
      gz.input.write(randomBytes(256 * 1024)); // a level change to stored
      gz.input.write(TEXT);
      if (round % 2 === 0) gz.output.destroy();
      else setImmediate(() => gz.output.destroy());
      await closed;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  });

  test("a context of text and random files unpacks whole with busybox tar", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kib-adaptive-"));
    writeFileSync(join(dir, "Dockerfile"), "FROM scratch\n");
    mkdirSync(join(dir, "assets"));
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) {
      files[`assets/blob${i}.bin`] = Buffer.concat([randomBytes(300 * 1024), TEXT]);
      files[`src${i}.js`] = TEXT.subarray(0, 1000 * (i + 1));
    }
    for (const [path, body] of Object.entries(files)) writeFileSync(join(dir, path), body);
    const plan = await planContext(dir, { dockerfile: "Dockerfile" });
    const chunks: Buffer[] = [];
    for await (const chunk of tarContext(plan)) chunks.push(chunk as Buffer);
    const out = mkdtempSync(join(tmpdir(), "kib-adaptive-out-"));
    execFileSync("busybox", ["tar", "-xzf", "-", "-C", out], { input: Buffer.concat(chunks) });
    for (const [path, body] of Object.entries(files)) {
      expect(readFileSync(join(out, path)).equals(body)).toBe(true);
    }
  });
});
