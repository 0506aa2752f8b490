/** The engine's Reporter on GitHub Actions: groups, annotations, masked secrets, a safe build log. */
import { randomBytes } from "node:crypto";
import * as core from "@actions/core";
import type { LogLine, Reporter, UploadProgress } from "../core/reporter.js";

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function createGitHubReporter(): Reporter {
  let lastProgressAt = 0;
  let stopToken: string | undefined;
  const resumeCommands = () => {
    if (stopToken) {
      process.stdout.write(`::${stopToken}::\n`);
      stopToken = undefined;
    }
  };
  return {
    info: (message) => core.info(message),
    warn: (message) => core.warning(message),
    debug: (message) => core.debug(message),
    async group(title, fn) {
      core.startGroup(title);
      try {
        return await fn();
      } finally {
        resumeCommands();
        core.endGroup();
      }
    },
    buildLog(line: LogLine) {
      // The build log is the Dockerfile's output: never let it issue workflow commands.
      if (!stopToken) {
        stopToken = randomBytes(16).toString("hex");
        process.stdout.write(`::stop-commands::${stopToken}\n`);
      }
      process.stdout.write(`${line.text}\n`);
    },
    upload(progress: UploadProgress) {
      const now = Date.now();
      if (progress.done || now - lastProgressAt < 2000) return;
      lastProgressAt = now;
      const seconds = Math.max(progress.elapsedMs / 1000, 0.001);
      core.info(
        `Sending context: ${progress.files.toLocaleString("en-US")} files, ${mib(progress.bytes)} … ${mib(progress.sentBytes / seconds)}/s`,
      );
    },
    mask: (secret) => core.setSecret(secret),
  };
}
