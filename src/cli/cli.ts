/**
 * `k8s-image-build build [flags]`: every action input as a flag (`--tags`) and as an environment
 * variable (`KIB_TAGS`); flags win. Used by the GitLab component and by people.
 * `k8s-image-build cleanup` (what a killed build left) is ./cleanup.ts.
 */
import { rmSync, writeFileSync } from "node:fs";
import { build, renderBuildManifests } from "../core/build.js";
import { BuildFailure, InputError, isUserFacing } from "../core/errors.js";
import { manifestsToYaml } from "../core/job/manifests.js";
import { rawSecretValues, secretsOf } from "../core/spec/masking.js";
import { ParseError, parseBoolean } from "../core/spec/parse.js";
import { INPUT_NAMES, parseBuildSpec, type InputName, type RawInputs } from "../core/spec/spec.js";
import { dotenvOf } from "./dotenv.js";
import { FlagError, parseFlags, type FlagSet, type ParsedFlags } from "./flags.js";
import { applyMergeRequestPreview, withGitLabRegistryDefault } from "./gitlab.js";
import { INPUT_DOCS } from "./input-docs.generated.js";
import { clusterEnvironment } from "../environment.js";
import { createCliReporter } from "./reporter.js";
import { cleanupCommand } from "./cleanup.js";
import { runIdOf } from "./run-id.js";
import { VERSION } from "./version.js";

/** Inputs given as switches: `--dry-run`, `--no-push`. */
export const BOOLEAN_INPUTS: ReadonlySet<string> = new Set([
  "push",
  "keep-job",
  "allow-privileged",
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

/** A CI job with a checkout (GitLab, GitHub Actions), as opposed to a terminal. */
export function runsInCi(env: NodeJS.ProcessEnv): boolean {
  return env.GITLAB_CI === "true" || env.GITHUB_ACTIONS === "true";
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
    "       k8s-image-build cleanup [--older-than <duration>] [flags]  (see cleanup --help)",
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
    `  ${"--state-file <file>".padEnd(34)} Write the run id to this file before anything is created in the cluster, and remove it once the build has deleted what it created (the GitLab template runs cleanup only when it is left).  [KIB_STATE_FILE]`,
    `  ${"--verbose".padEnd(34)} Print debug lines.`,
    `  ${"--help, -h".padEnd(34)} Print this help.`,
    `  ${"--version".padEnd(34)} Print the version of k8s-image-build.`,
  );
  return lines.join("\n");
}

export interface ParsedCommandLine {
  raw: RawInputs;
  /** `--preview` / KIB_PREVIEW: merge-request preview tags (./gitlab.ts). */
  preview: boolean;
  dotenv?: string;
  /** `--state-file`: exists from just before the first create until the build's own cleanup. */
  stateFile?: string;
  verbose: boolean;
  help: boolean;
  version: boolean;
}

/** Flags every command takes. */
const GLOBAL_SWITCHES = ["help", "version", "verbose"];

/** The flags of `build`: every input, `--dotenv`, and the global switches. */
export function buildFlags(): FlagSet {
  return {
    switches: new Set([
      ...CLI_INPUT_NAMES.filter((n) => BOOLEAN_INPUTS.has(n)),
      ...GLOBAL_SWITCHES,
    ]),
    values: new Set([
      ...CLI_INPUT_NAMES.filter((n) => !BOOLEAN_INPUTS.has(n)),
      "dotenv",
      "state-file",
    ]),
    short: { h: "help" },
  };
}

/** A FlagError about an input is that input's error (`input "push": …`), like a bad KIB_ value. */
function asInputError(error: FlagError): Error {
  if (error.flag !== undefined && CLI_INPUT_NAMES.includes(error.flag)) {
    return new InputError(error.flag, error.detail);
  }
  return error;
}

/** Flags and KIB_* variables → raw inputs, exactly as the action would receive them. */
export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  let parsed: ParsedFlags;
  try {
    parsed = parseFlags(argv, buildFlags());
  } catch (error) {
    throw error instanceof FlagError ? asInputError(error) : error;
  }
  const [command, ...rest] = parsed.positionals;
  const values: Record<string, string[] | boolean | undefined> = {
    ...Object.fromEntries(parsed.values),
    ...Object.fromEntries(parsed.switches),
  };
  const none = { raw: {}, preview: false, verbose: false, help: false, version: false };
  if (values.version) return { ...none, version: true };
  if (values.help || command === "help") return { ...none, help: true };
  if (command !== "build" || rest.length > 0) {
    const got = parsed.positionals.length === 0 ? "nothing" : `"${parsed.positionals.join(" ")}"`;
    throw new FlagError(`expected "build" or "cleanup" followed by flags, got ${got} (see --help)`);
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
  const lastValue = (flag: string[] | boolean | undefined): string | undefined =>
    Array.isArray(flag) ? flag[flag.length - 1] : undefined;
  const dotenv = lastValue(values.dotenv) ?? (env.KIB_DOTENV || undefined);
  const stateFile = lastValue(values["state-file"]) ?? (env.KIB_STATE_FILE || undefined);
  return {
    raw,
    preview,
    dotenv,
    stateFile,
    verbose: Boolean(values.verbose),
    help: false,
    version: false,
  };
}

export async function cli(io: CliIo): Promise<number> {
  if (io.argv[0] === "cleanup") return cleanupCommand(io);
  const gitlab = io.env.GITLAB_CI === "true";
  let verbose = false;
  const reporter = createCliReporter({ gitlab, verbose: () => verbose, out: io.stderr });
  try {
    const command = parseCommandLine(io.argv, io.env);
    verbose = command.verbose;
    if (command.version) {
      io.stdout.write(`k8s-image-build ${VERSION}\n`);
      return 0;
    }
    if (command.help) {
      io.stdout.write(`${helpText()}\n`);
      return 0;
    }
    for (const value of rawSecretValues(command.raw)) reporter.mask(value);
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
    // In a CI job the checkout is the workspace and paths stay in it, as in the action; a
    // terminal has none: any existing directory may be the context.
    const environment = {
      ...clusterEnvironment(io.env, io.cwd),
      confineToWorkspace: runsInCi(io.env),
    };
    const spec = parseBuildSpec(raw, environment);
    for (const value of secretsOf(spec)) reporter.mask(value);
    const runId = runIdOf(io.env);
    if (spec.dryRun) {
      // stdout is the YAML alone, like kubectl's dry run: `--dry-run > job.yaml` gives a clean file.
      io.stdout.write(manifestsToYaml(renderBuildManifests(spec, runId), { redactSecrets: true }));
      if (command.dotenv) reporter.warn(`dry run: ${command.dotenv} was not written`);
      return 0;
    }
    const stateFile = command.stateFile;
    const result = await build(spec, {
      reporter,
      runId,
      signal: io.signal,
      // Written before the first create, so a kill at any later moment leaves it for cleanup.
      onSubmitting: stateFile ? () => writeFileSync(stateFile, `${runId}\n`) : undefined,
      onCleanedUp: stateFile ? () => rmSync(stateFile, { force: true }) : undefined,
    });
    if (command.dotenv) {
      const report = dotenvOf(result);
      writeFileSync(command.dotenv, report.text);
      for (const warning of report.warnings) reporter.warn(warning);
    }
    io.stdout.write(`${result.image}\n`);
    return 0;
  } catch (error) {
    if (isUserFacing(error) || error instanceof FlagError) {
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
