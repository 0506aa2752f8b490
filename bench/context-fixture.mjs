// A build context shaped like a real one, for the benchmarks: many small source files (about 30 %
// of the bytes) and large blobs, half random, half compressible.
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

export function writeBenchContext(dir, totalMb) {
  mkdirSync(dir);
  writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\nCOPY . /\n");
  const line =
    "export function handler(event, context) { return { statusCode: 200, body: JSON.stringify(event) }; }\n";
  let written = 0;
  const smallBytes = totalMb * 0.3e6;
  for (let i = 0; written < smallBytes; i++) {
    const sub = path.join(dir, "src", `pkg${i % 40}`);
    mkdirSync(sub, { recursive: true });
    const body = Buffer.from(line.repeat(10 + (i % 150)) + randomBytes(64).toString("hex"));
    writeFileSync(path.join(sub, `file${i}.js`), body);
    written += body.length;
  }
  const blob = 2 * 1024 * 1024;
  for (let i = 0; written < totalMb * 1e6; i++) {
    mkdirSync(path.join(dir, "assets"), { recursive: true });
    writeFileSync(
      path.join(dir, "assets", `blob${i}.bin`),
      Buffer.concat([randomBytes(blob / 2), Buffer.from(line.repeat(blob / 2 / line.length))]),
    );
    written += blob;
  }
  return dir;
}
