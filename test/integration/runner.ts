/**
 * Runs the bundled action the way the GitHub runner does: `node dist/<entry>.js` with INPUT_*
 * variables, the GITHUB_OUTPUT / GITHUB_STATE / GITHUB_STEP_SUMMARY files and STATE_* for post.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RunnerFiles {
  dir: string;
  output: string;
  state: string;
  summary: string;
}

export interface ActionRun {
  child: ChildProcess;
  files: RunnerFiles;
  done: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>;
}

export interface ActionOptions {
  workspace: string;
  inputs: Record<string, string>;
  /** More runner variables (GITHUB_EVENT_NAME, GITHUB_API_URL, …). */
  env?: NodeJS.ProcessEnv;
  /** Saved state handed to a post step, as STATE_<name>. */
  state?: Record<string, string>;
}

export function runnerFiles(): RunnerFiles {
  const dir = mkdtempSync(join(tmpdir(), "kib-runner-"));
  const files = {
    dir,
    output: join(dir, "output"),
    state: join(dir, "state"),
    summary: join(dir, "summary"),
  };
  for (const path of [files.output, files.state, files.summary]) writeFileSync(path, "");
  return files;
}

export function startAction(entry: "main" | "post", options: ActionOptions): ActionRun {
  const files = runnerFiles();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: files.dir,
    RUNNER_TEMP: files.dir,
    GITHUB_ACTIONS: "true",
    GITHUB_RUN_ID: "4242",
    GITHUB_RUN_ATTEMPT: "1",
    GITHUB_WORKSPACE: options.workspace,
    GITHUB_OUTPUT: files.output,
    GITHUB_STATE: files.state,
    GITHUB_STEP_SUMMARY: files.summary,
    ...options.env,
  };
  for (const [name, value] of Object.entries(options.inputs))
    env[`INPUT_${name.toUpperCase()}`] = value;
  for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value;
  const child = spawn(process.execPath, [`dist/${entry}.js`], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => (stdout += chunk));
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, files, done };
}

/** The runner's file-command format: `name<<delimiter` … `delimiter`; the last value of a name wins. */
export function readFileCommands(path: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = readFileSync(path, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(.+)$/.exec(lines[i]);
    if (!match) continue;
    const [, name, delimiter] = match;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]);
    values[name] = value.join("\n");
  }
  return values;
}
