/** The engine's Reporter for a terminal or a GitLab job log (collapsible sections there). */
import type { LogLine, Reporter, UploadProgress } from "../core/reporter.js";
import { formatCount } from "../core/build/format.js";

export interface CliReporterOptions {
  gitlab: boolean;
  /** Asked per line: the flag is known only once the command line is parsed. */
  verbose: () => boolean;
  out?: NodeJS.WritableStream;
  now?: () => number;
}

export function createCliReporter(options: CliReporterOptions): Reporter & { masked: string[] } {
  const out = options.out ?? process.stderr;
  const masked: string[] = [];
  const now = options.now ?? (() => Date.now());
  let lastProgressAt = 0;
  let section = 0;
  const write = (text: string) => {
    let safe = text;
    for (const secret of masked) safe = safe.split(secret).join("***");
    out.write(`${safe}\n`);
  };
  return {
    masked,
    info: write,
    warn: (message) => write(`warning: ${message}`),
    debug: (message) => {
      if (options.verbose()) write(`debug: ${message}`);
    },
    async group(title, fn) {
      const name = `kib_${++section}`;
      if (options.gitlab) {
        out.write(
          `\x1b[0Ksection_start:${Math.floor(now() / 1000)}:${name}[collapsed=false]\r\x1b[0K${title}\n`,
        );
      } else {
        write(`== ${title}`);
      }
      try {
        return await fn();
      } finally {
        if (options.gitlab)
          out.write(`\x1b[0Ksection_end:${Math.floor(now() / 1000)}:${name}\r\x1b[0K\n`);
      }
    },
    buildLog: (line: LogLine) => write(line.text),
    upload(progress: UploadProgress) {
      const t = now();
      if (progress.done || t - lastProgressAt < 2000) return;
      lastProgressAt = t;
      const seconds = Math.max(progress.elapsedMs / 1000, 0.001);
      write(
        `Sending context: ${formatCount(progress.files)} files, ${(progress.bytes / 1048576).toFixed(1)} MiB … ${(progress.sentBytes / 1048576 / seconds).toFixed(1)} MiB/s`,
      );
    },
    mask(secret) {
      if (secret.length >= 3 && !masked.includes(secret)) masked.push(secret);
    },
  };
}
