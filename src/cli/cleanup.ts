/**
 * `k8s-image-build cleanup [--older-than <duration>] [flags]`: deletes build objects found by their
 * labels, for a build process that was killed (a cancelled GitLab job, a runner that died) before
 * it could delete its own. Without --older-than: every Job and Secret of this CI job's run id
 * (./run-id.ts). With it: every build's Job and Secret in the namespace older than that.
 */
import { connect, createClients } from "../core/cluster/connection.js";
import { BuildFailure, isUserFacing } from "../core/errors.js";
import { sweepBuildObjects, type SweepSelection, type SweptObject } from "../core/job/sweep.js";
import { formatDuration, parseDurationSeconds } from "../core/spec/parse.js";
import { parseClusterInputs, type RawInputs } from "../core/spec/spec.js";
import { clusterEnvironment } from "../environment.js";
import type { CliIo } from "./cli.js";
import { FlagError, parseFlags, type FlagSet, type ParsedFlags } from "./flags.js";
import { createCliReporter } from "./reporter.js";
import { runIdOf } from "./run-id.js";

const CONNECTION_INPUTS = ["kubeconfig", "kube-context", "namespace"] as const;

export function cleanupHelpText(): string {
  const flag = (name: string, text: string) => `  ${name.padEnd(34)} ${text}`;
  return [
    "Usage: k8s-image-build cleanup [--older-than <duration>] [flags]",
    "",
    "Deletes build Jobs (their pods with them) and Secrets that a killed build left behind.",
    "Without --older-than: those of this CI job's run (k8s-image-build/run-id: gitlab-$CI_JOB_ID,",
    "$GITHUB_RUN_ID, or local outside CI). With it: every build's in the namespace older than that.",
    "",
    "Flags:",
    flag(
      "--older-than <duration>",
      "Delete every build object in the namespace created longer ago than this, as a duration like 2h or 1h30m, or seconds.  [KIB_OLDER_THAN]",
    ),
    flag("--kubeconfig <value>", "Kubeconfig content, as for build.  [KIB_KUBECONFIG]"),
    flag("--kube-context <value>", "Kubeconfig context, as for build.  [KIB_KUBE_CONTEXT]"),
    flag(
      "--namespace <value>",
      "Namespace of the builds; default is the context's namespace.  [KIB_NAMESPACE]",
    ),
    flag(
      "--keep-job / --no-keep-job",
      "With keep-job set, a run's objects are left for debugging (not with --older-than).  [KIB_KEEP_JOB]",
    ),
    flag("--verbose", "Print debug lines."),
    flag("--help", "Print this help."),
  ].join("\n");
}

interface CleanupCommandLine {
  raw: RawInputs;
  olderThan?: string;
  verbose: boolean;
  help: boolean;
}

function fromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[`KIB_${name.toUpperCase().replace(/-/g, "_")}`];
  return value === undefined || value === "" ? undefined : value;
}

/** The flags of `cleanup`: the connection inputs, --older-than, --keep-job and the global switches. */
const CLEANUP_FLAGS: FlagSet = {
  switches: new Set(["keep-job", "verbose", "help"]),
  values: new Set([...CONNECTION_INPUTS, "older-than"]),
  short: { h: "help" },
};

function parseCleanupCommandLine(argv: string[], env: NodeJS.ProcessEnv): CleanupCommandLine {
  let parsed: ParsedFlags;
  try {
    parsed = parseFlags(argv, CLEANUP_FLAGS);
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    throw new BuildFailure("api", `command line: ${error.message} (see cleanup --help)`);
  }
  const last = (name: string): string | undefined => {
    const all = parsed.values.get(name);
    return all && all.length > 0 ? all[all.length - 1] : undefined;
  };
  const extra = parsed.positionals.slice(1);
  if (extra.length > 0) {
    throw new BuildFailure(
      "api",
      `command line: cleanup takes no arguments, got "${extra.join(" ")}" (see cleanup --help)`,
    );
  }
  const raw: RawInputs = {};
  for (const name of CONNECTION_INPUTS) {
    const value = last(name);
    const text = value !== undefined && value !== "" ? value : fromEnv(env, name);
    if (text !== undefined) raw[name] = text;
  }
  const keepJob = parsed.switches.get("keep-job");
  if (typeof keepJob === "boolean") raw["keep-job"] = String(keepJob);
  else if (fromEnv(env, "keep-job") !== undefined) raw["keep-job"] = fromEnv(env, "keep-job");
  const olderThan = last("older-than") ?? fromEnv(env, "older-than");
  return {
    raw,
    ...(olderThan !== undefined ? { olderThan } : {}),
    verbose: Boolean(parsed.switches.get("verbose")),
    help: Boolean(parsed.switches.get("help")),
  };
}

/** `--older-than` → seconds, or one line naming the flag and the format. */
export function parseOlderThan(text: string): number {
  const value = text.trim();
  try {
    if (value === "") throw new Error("empty");
    return parseDurationSeconds(value);
  } catch {
    throw new BuildFailure(
      "api",
      `--older-than: "${text}" is not a duration; use a duration like 30m, 2h or 1h30m, or whole seconds`,
    );
  }
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function summary(deleted: SweptObject[]): string {
  const jobs = deleted.filter((object) => object.kind === "Job").length;
  const secrets = deleted.length - jobs;
  return `${plural(jobs, "Job")} and ${plural(secrets, "Secret")}`;
}

export async function cleanupCommand(io: CliIo): Promise<number> {
  let verbose = false;
  const reporter = createCliReporter({
    gitlab: io.env.GITLAB_CI === "true",
    verbose: () => verbose,
    out: io.stderr,
  });
  try {
    const command = parseCleanupCommandLine(io.argv, io.env);
    verbose = command.verbose;
    if (command.help) {
      io.stdout.write(`${cleanupHelpText()}\n`);
      return 0;
    }
    if (command.raw.kubeconfig) reporter.mask(command.raw.kubeconfig);
    const olderThanSeconds =
      command.olderThan !== undefined ? parseOlderThan(command.olderThan) : undefined;
    const {
      cluster,
      keepJob,
      namespace: given,
    } = parseClusterInputs(command.raw, clusterEnvironment(io.env, io.cwd));
    const runId = runIdOf(io.env);
    if (olderThanSeconds === undefined && keepJob) {
      reporter.info(
        `cleanup: keep-job is set; leaving the objects of run ${runId} (their ttl removes them)`,
      );
      return 0;
    }
    const connection = connect(cluster);
    const namespace = given ?? connection.contextNamespace;
    const now = new Date();
    const selection: SweepSelection =
      olderThanSeconds === undefined
        ? { runId }
        : { createdBefore: new Date(now.getTime() - olderThanSeconds * 1000) };
    const scope =
      olderThanSeconds === undefined
        ? `of run ${runId}`
        : `older than ${formatDuration(Math.round(olderThanSeconds))}`;
    reporter.debug(`cleanup: ${connection.server} (${connection.origin}), namespace ${namespace}`);
    const result = await sweepBuildObjects(
      createClients(connection.kubeConfig),
      namespace,
      selection,
      {
        retry: { signal: io.signal, onRetry: (message) => reporter.warn(message) },
        onDeleted: (object) => {
          const age =
            object.created !== undefined
              ? `, age ${formatDuration(Math.max(0, Math.floor((now.getTime() - object.created.getTime()) / 1000)))}`
              : "";
          io.stdout.write(
            `deleted ${object.kind} ${namespace}/${object.name} (run ${object.runId}${age})\n`,
          );
        },
        onWarning: (message) => reporter.warn(message),
      },
    );
    if (result.deleted.length === 0 && result.failed === 0) {
      io.stdout.write(`cleanup: no build Job or Secret ${scope} in ${namespace}\n`);
      return 0;
    }
    io.stdout.write(
      `cleanup: deleted ${summary(result.deleted)} ${scope} in ${namespace}${result.failed ? `; ${result.failed} could not be deleted` : ""}\n`,
    );
    return result.failed ? 1 : 0;
  } catch (error) {
    if (isUserFacing(error)) {
      reporter.info(`error: ${error.message}`);
      if (
        error instanceof BuildFailure &&
        error.kind === "kubeconfig" &&
        io.env.GITLAB_CI === "true" &&
        io.env.CI_JOB_STATUS === "canceled"
      ) {
        reporter.info(
          "note: GitLab revokes a cancelled job's CI_JOB_TOKEN before after_script runs (gitlab-org/gitlab#473376), and the GitLab agent's kubeconfig authenticates with it; a scheduled `k8s-image-build cleanup --older-than <duration>` removes what is left",
        );
      }
    } else {
      const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
      reporter.info(`error: cleanup: ${message}`);
      if (verbose && error instanceof Error && error.stack) reporter.debug(error.stack);
    }
    return 1;
  }
}
