/**
 * `k8s-image-build build [flags]`: every action input as a flag (`--tags`) and as an environment
 * variable (`KIB_TAGS`); flags win. Used by the GitLab component and by people.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { build, renderBuildManifests } from "../core/build.js";
import { BuildFailure, InputError, isUserFacing } from "../core/errors.js";
import { manifestsToYaml } from "../core/job/manifests.js";
import { SECRET_INPUTS, secretsOf } from "../core/spec/masking.js";
import { ParseError, parseBoolean } from "../core/spec/parse.js";
import { INPUT_NAMES, parseBuildSpec, type InputName, type RawInputs } from "../core/spec/spec.js";
import { dotenvOf } from "./dotenv.js";
import { applyMergeRequestPreview, withGitLabRegistryDefault } from "./gitlab.js";
import { INPUT_DOCS } from "./input-docs.generated.js";
import { clusterEnvironment } from "../environment.js";
import { createCliReporter } from "./reporter.js";

/** Inputs given as switches: `--dry-run`, `--no-push`. */
export const BOOLEAN_INPUTS: ReadonlySet<string> = new Set([
  "push",
  "keep-job",
  "dry-run",
  "preview",
]);

/**
 * The CLI's inputs: the engine's (src/core/spec.ts, described in action.yml) plus `preview`, which
 * the CLI handles itself (merge-request tags, see ./gitlab.ts). The GitHub-only action inputs
 * (github-token, allow-fork-builds) have no CLI form.
 */
export const CLI_INPUT_NAMES: readonly string[] = [...INPUT_NAMES, "preview"];

/** `preview` means something else here than in the action (no pull-request comment, no cleanup). */
const CLI_ONLY_DOCS: Record<string, { description: string; default?: string }> = {
  preview: {
    description:
      "In a GitLab merge-request pipeline ($CI_MERGE_REQUEST_IID set), push the tags mr-<iid> and mr-<iid>-<short sha> in the repositories of tags instead of the tags themselves; elsewhere the tags as given (true/false).",
    default: "false",
  },
};

export function inputDoc(name: string): { description: string; default?: string } | undefined {
  return CLI_ONLY_DOCS[name] ?? INPUT_DOCS[name];
}
/** Inputs that are lists: a repeated flag adds a line. */
export const LIST_INPUTS: ReadonlySet<string> = new Set([
  "tags",
  "build-args",
  "labels",
  "platforms",
  "cache-from",
  "cache-to",
  "secrets",
  "secret-files",
  "insecure-registries",
  "node-selector",
]);

export function envName(input: string): string {
  return `KIB_${input.toUpperCase().replace(/-/g, "_")}`;
}

export interface CliIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  cwd: string;
  signal?: AbortSignal;
}

export function helpText(): string {
  const lines = [
    "Usage: k8s-image-build build [flags]",
    "",
    "Builds a container image in a Kubernetes cluster and prints the pushed digest.",
    "Every flag can also be set as an environment variable (KIB_<NAME>, e.g. KIB_TAGS); flags win.",
    "",
    "Flags:",
  ];
  for (const name of CLI_INPUT_NAMES) {
    const doc = inputDoc(name);
    const flag = BOOLEAN_INPUTS.has(name) ? `--${name} / --no-${name}` : `--${name} <value>`;
    const defaultText = doc?.default ? ` (default: ${doc.default})` : "";
    lines.push(`  ${flag.padEnd(34)} ${doc?.description ?? ""}${defaultText}  [${envName(name)}]`);
  }
  lines.push(
    `  ${"--dotenv <file>".padEnd(34)} Write IMAGE_DIGEST, IMAGE_REF, IMAGE_REUSED and IMAGE_TAGS to this dotenv file.  [KIB_DOTENV]`,
    `  ${"--verbose".padEnd(34)} Print debug lines.`,
    `  ${"--help".padEnd(34)} Print this help.`,
  );
  return lines.join("\n");
}

export interface ParsedCommandLine {
  raw: RawInputs;
  /** `--preview` / KIB_PREVIEW: merge-request preview tags (./gitlab.ts). */
  preview: boolean;
  dotenv?: string;
  verbose: boolean;
  help: boolean;
}

/** Flags and KIB_* variables → raw inputs, exactly as the action would receive them. */
export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {
    dotenv: { type: "string" },
    verbose: { type: "boolean" },
    help: { type: "boolean" },
  };
  for (const name of CLI_INPUT_NAMES) {
    options[name] = BOOLEAN_INPUTS.has(name)
      ? { type: "boolean" }
      : { type: "string", multiple: true };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new BuildFailure("api", `command line: ${message} (see --help)`);
  }
  const [command, ...rest] = parsed.positionals;
  const values = parsed.values as Record<string, string[] | string | boolean | undefined>;
  if (values.help || command === "help")
    return { raw: {}, preview: false, verbose: false, help: true };
  if (command !== "build" || rest.length > 0) {
    throw new BuildFailure(
      "api",
      `command line: expected "build" followed by flags, got "${parsed.positionals.join(" ")}" (see --help)`,
    );
  }
  const raw: RawInputs = {};
  for (const name of INPUT_NAMES) {
    const value = values[name];
    let text: string | undefined;
    if (typeof value === "boolean") text = String(value);
    else if (Array.isArray(value) && value.length > 0) {
      text = LIST_INPUTS.has(name) ? value.join("\n") : value[value.length - 1];
    } else if (env[envName(name)] !== undefined && env[envName(name)] !== "") {
      text = env[envName(name)];
    }
    if (text !== undefined && text !== "") raw[name as InputName] = text;
  }
  let preview = false;
  if (typeof values.preview === "boolean") preview = values.preview;
  else if (env.KIB_PREVIEW !== undefined && env.KIB_PREVIEW.trim() !== "") {
    try {
      preview = parseBoolean(env.KIB_PREVIEW.trim());
    } catch (error) {
      if (error instanceof ParseError) throw new InputError("preview", error.message);
      throw error;
    }
  }
  const dotenv = typeof values.dotenv === "string" ? values.dotenv : env.KIB_DOTENV || undefined;
  return { raw, preview, dotenv, verbose: Boolean(values.verbose), help: false };
}

export async function cli(io: CliIo): Promise<number> {
  const gitlab = io.env.GITLAB_CI === "true";
  let verbose = false;
  const reporter = createCliReporter({ gitlab, verbose: () => verbose, out: io.stderr });
  try {
    const command = parseCommandLine(io.argv, io.env);
    verbose = command.verbose;
    if (command.help) {
      io.stdout.write(`${helpText()}\n`);
      return 0;
    }
    for (const name of SECRET_INPUTS) {
      const value = command.raw[name];
      if (value) reporter.mask(value);
    }
    let raw = command.raw;
    if (command.preview) {
      const preview = applyMergeRequestPreview(raw, io.env);
      raw = preview.raw;
      reporter.info(preview.note);
    }
    if (gitlab) {
      const registry = withGitLabRegistryDefault(raw, io.env);
      for (const secret of registry.secrets) reporter.mask(secret);
      raw = registry.raw;
      if (registry.note) reporter.info(registry.note);
    }
    const environment = clusterEnvironment(io.env, io.cwd);
    const spec = parseBuildSpec(raw, environment);
    for (const value of secretsOf(spec)) reporter.mask(value);
    const runId = io.env.CI_JOB_ID
      ? `gitlab-${io.env.CI_JOB_ID}`
      : io.env.GITHUB_RUN_ID
        ? `${io.env.GITHUB_RUN_ID}`
        : "local";
    if (spec.dryRun) {
      // stdout is the YAML alone, like kubectl's dry run: `--dry-run > job.yaml` gives a clean file.
      io.stdout.write(manifestsToYaml(renderBuildManifests(spec, runId), { redactSecrets: true }));
      if (command.dotenv) reporter.warn(`dry run: ${command.dotenv} was not written`);
      return 0;
    }
    const result = await build(spec, { reporter, runId, signal: io.signal });
    if (command.dotenv) {
      const report = dotenvOf(result);
      writeFileSync(command.dotenv, report.text);
      for (const warning of report.warnings) reporter.warn(warning);
    }
    io.stdout.write(`${result.image}\n`);
    return 0;
  } catch (error) {
    if (isUserFacing(error)) {
      if (error instanceof BuildFailure && error.logTail.length > 0) {
        reporter.info("Last lines of the build log:");
        for (const line of error.logTail) reporter.info(`  ${line}`);
      }
      reporter.info(`error: ${error.message}`);
    } else {
      const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
      reporter.info(`error: ${message}`);
      if (verbose && error instanceof Error && error.stack) reporter.debug(error.stack);
    }
    return 1;
  }
}

export async function runCli(): Promise<void> {
  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once("SIGINT", cancel);
  process.once("SIGTERM", cancel);
  process.exitCode = await cli({
    argv: process.argv.slice(2),
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    signal: controller.signal,
  });
}
