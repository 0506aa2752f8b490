/** Runs the CLI in-process as a terminal would: argv, environment, working directory. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { cli } from "../../src/cli/cli.js";

export function sink(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString("utf8"));
      done();
    },
  }) as Writable & { text: () => string };
  stream.text = () => chunks.join("");
  return stream;
}

export function contextDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "kib-cmd-"));
  writeFileSync(join(dir, "Dockerfile"), "FROM busybox\n");
  return dir;
}

export async function run(
  argv: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = sink();
  const stderr = sink();
  const code = await cli({
    argv,
    env: { HOME: tmpdir(), ...options.env },
    stdout,
    stderr,
    cwd: options.cwd ?? contextDir(),
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
