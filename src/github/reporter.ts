/** The engine's Reporter on GitHub Actions: groups, annotations, masked secrets, a safe build log. */
import { randomBytes } from "node:crypto";
import * as core from "@actions/core";
import type { LogLine, Reporter, UploadProgress } from "../core/reporter.js";
import { formatCount } from "../core/build/format.js";
import { maskOnce } from "./mask.js";

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Lines the runner would take as workflow commands (`::cmd::` after leading space, or `##[cmd]`). */
export function looksLikeWorkflowCommand(line: string): boolean {
  return line.trimStart().startsWith("::") || line.includes("##[");
}

export function createGitHubReporter(
  write: (text: string) => void = (text) => process.stdout.write(text),
): Reporter {
  let lastProgressAt = 0;
  return {
    info: (message) => core.info(message),
    warn: (message) => core.warning(message),
    debug: (message) => core.debug(message),
    async group(title, fn) {
      core.startGroup(title);
      try {
        return await fn();
      } finally {
        core.endGroup();
      }
    },
    buildLog(line: LogLine) {
      // The build log is the Dockerfile's output: a line that reads as a workflow command is
      // printed with commands stopped around it, so it shows as text and does nothing.
      if (!looksLikeWorkflowCommand(line.text)) {
        write(`${line.text}\n`);
        return;
      }
      const token = randomBytes(16).toString("hex");
      write(`::stop-commands::${token}\n${line.text}\n::${token}::\n`);
    },
    upload(progress: UploadProgress) {
      const now = Date.now();
      if (progress.done || now - lastProgressAt < 2000) return;
      lastProgressAt = now;
      const seconds = Math.max(progress.elapsedMs / 1000, 0.001);
      core.info(
        `Sending context: ${formatCount(progress.files)} files, ${mib(progress.bytes)} … ${mib(progress.sentBytes / seconds)}/s`,
      );
    },
    mask: (secret) => maskOnce(secret),
  };
}
