/** The `context` init container's process: `tar -xzf - -C <context dir>`, really run on the bytes that arrive. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class Receiver {
  readonly dir: string;
  private readonly proc: ChildProcess;
  private stdinClosed = false;
  /** An attach with stdin has connected (stdinOnce: only the first one feeds the process). */
  claimed = false;
  bytes = 0;
  readonly exit: Promise<number>;

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), `kib-ctx-${prefix}-`));
    this.proc = spawn("tar", ["-xzf", "-", "-C", this.dir], { stdio: ["pipe", "ignore", "pipe"] });
    this.proc.stdin!.on("error", () => {});
    this.proc.stderr!.resume();
    this.exit = new Promise((resolve) => {
      this.proc.on("close", (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
      this.proc.on("error", () => resolve(127));
    });
  }

  get closed(): boolean {
    return this.stdinClosed;
  }

  /** Writes stdin bytes; returns false when the pipe is full (caller pauses its source until drain). */
  write(buf: Buffer, onDrain: () => void): boolean {
    if (this.stdinClosed) return true;
    this.bytes += buf.length;
    const ok = this.proc.stdin!.write(buf);
    if (!ok) this.proc.stdin!.once("drain", onDrain);
    return ok;
  }

  /** EOF on stdin (stdinOnce: the attached client went away). */
  end(): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    this.proc.stdin!.end();
  }

  kill(): void {
    this.stdinClosed = true;
    if (this.proc.exitCode === null) this.proc.kill("SIGTERM");
  }
}
