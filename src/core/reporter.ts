/** How the engine talks to whoever runs it. Adapters implement it; the engine knows no CI system. */

export interface LogLine {
  /** Container the line came from ("context" receiver or "build"). */
  container: string;
  /** RFC3339Nano timestamp the kubelet gave the line. */
  time: string;
  text: string;
}

export interface UploadProgress {
  files: number;
  bytes: number;
  /** Compressed bytes sent so far. */
  sentBytes: number;
  elapsedMs: number;
  done: boolean;
}

export interface Reporter {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
  /** Runs fn inside a collapsible log section. */
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
  /** A line of the build's own log, in order, each printed once. */
  buildLog(line: LogLine): void;
  upload(progress: UploadProgress): void;
  /** Registers a value that must never be printed. */
  mask(secret: string): void;
}

/** A reporter that prints nothing: for library use and tests that only look at results. */
export const silentReporter: Reporter = {
  info() {},
  warn() {},
  debug() {},
  group: (_title, fn) => fn(),
  buildLog() {},
  upload() {},
  mask() {},
};
