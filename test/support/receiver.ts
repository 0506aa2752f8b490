/**
 * The stdin init container's process, as the pod runs it: its own command (`tar -xzf - -C /kaniko/buildcontext`)
 * run by BusyBox — the tar of the busybox image the receiver uses — on the bytes that arrive, with
 * its volume mounts mapped to a local directory. Like any PID 1 without a signal handler, it
 * ignores SIGTERM: only SIGKILL (after the grace period) stops it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** BusyBox from Debian's busybox-static (scripts/test-deps.sh installs it). */
export const BUSYBOX = process.env.KIB_TEST_BUSYBOX ?? "busybox";

/**
 * The receiver container's argv for BusyBox, with each volume mount's path replaced by `dir` (the
 * one volume a receiver writes: the workspace). A tar, or a `sh -c` script, is replayed: another
 * command is a loud failure.
 */
export function receiverArgv(container: any, dir: string): string[] {
  const argv: string[] = [...(container.command ?? []), ...(container.args ?? [])];
  const mounts: string[] = (container.volumeMounts ?? []).map((m: any) => m.mountPath as string);
  const mapPath = (arg: string) => {
    const mount = mounts.find((m) => arg === m || arg.startsWith(`${m}/`));
    return mount ? dir + arg.slice(mount.length) : arg;
  };
  if (argv[0] === "tar") return ["tar", ...argv.slice(1).map(mapPath)];
  if ((argv[0] === "sh" || argv[0] === "/bin/sh") && argv[1] === "-c" && argv.length === 3) {
    const script = argv[2]!.split(/(\s+)/).map(mapPath).join("");
    return ["sh", "-c", script];
  }
  throw new Error(
    `test server: the receiver container runs ${JSON.stringify(argv)}; only tar (or sh -c) is replayed`,
  );
}

export class Receiver {
  readonly dir: string;
  private readonly proc: ChildProcess;
  private stdinClosed = false;
  /** An attach with stdin has connected (stdinOnce: only the first one feeds the process). */
  claimed = false;
  bytes = 0;
  /** What tar said on stderr (the container's log). */
  stderr = "";
  readonly exit: Promise<number>;

  constructor(prefix: string, container: any) {
    this.dir = mkdtempSync(join(tmpdir(), `kib-ctx-${prefix}-`));
    const argv = receiverArgv(container, this.dir);
    this.proc = spawn(BUSYBOX, argv, { stdio: ["pipe", "ignore", "pipe"] });
    this.proc.stdin!.on("error", () => {});
    this.proc.stderr!.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString("utf8");
    });
    this.exit = new Promise((resolve) => {
      this.proc.on("close", (code, signal) =>
        resolve(code ?? (signal === "SIGKILL" ? 137 : signal ? 143 : 1)),
      );
      this.proc.on("error", () => resolve(127));
    });
  }

  get closed(): boolean {
    return this.stdinClosed;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
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

  /** SIGTERM to PID 1 without a handler: ignored. Returns whether the process stops from it. */
  terminate(): boolean {
    return false;
  }

  /** SIGKILL: the end of the grace period, or the node going away. */
  kill(): void {
    this.stdinClosed = true;
    if (this.running) this.proc.kill("SIGKILL");
  }
}
