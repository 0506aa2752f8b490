/**
 * Inputs (strings, as a CI system hands them over) → one validated BuildSpec. Every bad input is
 * one InputError naming the input and saying what is allowed, thrown before anything touches the
 * cluster. Values of secrets, passwords and kubeconfigs never appear in a message.
 */
import { readFileSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { posix } from "node:path";
import { parse as parseYaml } from "yaml";
import { BUILDER_NAMES, getBuilder, isBuilderName, unsupportedInput } from "../builders/index.js";
import { InputError } from "../errors.js";
import {
  ParseError,
  checkDns1123Label,
  checkDns1123Subdomain,
  checkLabelKey,
  checkLabelValue,
  formatDuration,
  parseBoolean,
  parseDurationSeconds,
  parseImageReference,
  parseQuantity,
  parseRegistryHost,
  registryAuthKey,
  splitKeyValue,
  splitList,
  type ImageReference,
} from "./parse.js";
import type {
  BuildSecret,
  BuildSpec,
  BuilderName,
  ClusterSource,
  ContextSource,
  KeyValue,
  ProxySettings,
  RegistryAuth,
  ResourceRequirements,
  Toleration,
} from "../types.js";

/** The BuildSpec inputs, exactly as action.yml names them (the preview inputs are the adapter's). */
export const INPUT_NAMES = [
  "context",
  "file",
  "tags",
  "build-args",
  "labels",
  "target",
  "push",
  "cache-repo",
  "cache-ttl",
  "reuse",
  "platforms",
  "cache-from",
  "cache-to",
  "secrets",
  "secret-files",
  "kubeconfig",
  "kube-context",
  "namespace",
  "service-account",
  "builder",
  "builder-image",
  "context-image",
  "node-selector",
  "tolerations",
  "resources",
  "timeout",
  "schedule-timeout",
  "ttl",
  "keep-job",
  "registry-username",
  "registry-password",
  "docker-config-json",
  "insecure-registries",
  "allow-privileged",
  "dry-run",
] as const;

export type InputName = (typeof INPUT_NAMES)[number];
/** Strings as CI gives them; "" (or absent) means unset. */
export type RawInputs = Partial<Record<InputName, string>>;

export interface ParseEnvironment {
  /** Base directory for relative context, file and secret-file paths. */
  workspace: string;
  /**
   * Whether context and file must lie inside `workspace`: yes for a CI checkout (the default),
   * no in a terminal, where any existing directory may be the context.
   */
  confineToWorkspace?: boolean;
  kubeconfigPaths: string[];
  inCluster?: ClusterSource["inCluster"];
  /** HTTPS_PROXY / HTTP_PROXY / NO_PROXY as the adapter read them. */
  proxy?: ProxySettings;
  /** The user's home directory: a kubeconfig path "~/…" starts there (CI inputs reach no shell). */
  home?: string;
}

/** The receiver init container's image: BusyBox (tar with gzip), pinned. */
export const DEFAULT_CONTEXT_IMAGE = "docker.io/library/busybox:1.37.0";
export const DEFAULT_TIMEOUT_SECONDS = 30 * 60;
/**
 * How long the pod may wait to be scheduled and to start while the cluster works on it: an
 * autoscaler's node takes 30–90 s (Karpenter, EKS Auto Mode) to a few minutes (cluster-autoscaler
 * with a cold node group), and the images are pulled onto it after that.
 */
export const DEFAULT_SCHEDULE_TIMEOUT_SECONDS = 10 * 60;
/** A fallback only: the tool deletes the Job itself; the TTL covers a runner that vanished. */
export const DEFAULT_TTL_SECONDS = 10 * 60;

const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;
const MAX_TTL_SECONDS = 7 * 24 * 3600;
const MAX_CACHE_TTL_SECONDS = 365 * 24 * 3600;
/** Kubernetes refuses Secrets over 1 MiB; leave room for keys and metadata. */
const MAX_SECRETS_BYTES = 1_000_000;

const SECRET_ID = /^[A-Za-z0-9._-]{1,253}$/;
const STAGE_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const PLATFORM_PART = /^[a-z0-9_]+$/;
const STANDARD_RESOURCES = ["cpu", "memory", "ephemeral-storage"];
const EXTENDED_RESOURCE = /^(hugepages-.+|[^/]+\/[^/]+)$/;

function fail(input: InputName, detail: string): never {
  throw new InputError(input, detail);
}

/** Runs a grammar parser and turns its ParseError into an InputError for `input`. */
function guard<T>(input: InputName, fn: () => T, prefix = ""): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ParseError) fail(input, prefix + error.message);
    throw error;
  }
}

function value(raw: RawInputs, input: InputName): string | undefined {
  const v = raw[input];
  if (v === undefined) return undefined;
  const trimmed = v.trim();
  return trimmed === "" ? undefined : trimmed;
}

function bool(raw: RawInputs, input: InputName, fallback: boolean): boolean {
  const v = value(raw, input);
  return v === undefined ? fallback : guard(input, () => parseBoolean(v));
}

function list(raw: RawInputs, input: InputName, comma: boolean): string[] {
  const v = raw[input];
  if (v === undefined || v.trim() === "") return [];
  return guard(input, () => splitList(v, { comma }));
}

function parseRef(input: InputName, s: string, what = "an image reference"): ImageReference {
  return guard(input, () => parseImageReference(s), `"${s}" is not ${what}: `);
}

// ---------------------------------------------------------------------------------------------

function parseTags(raw: RawInputs): { tags: string[]; refs: ImageReference[] } {
  const items = list(raw, "tags", true);
  if (items.length === 0) {
    fail("tags", "at least one image reference to push is required (newline- or comma-separated)");
  }
  const refs: ImageReference[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const ref = parseRef("tags", item);
    if (ref.digest !== undefined) {
      fail(
        "tags",
        `"${item}" carries a digest; a tag to push is name[:tag] (the digest is the build's output)`,
      );
    }
    if (seen.has(item)) fail("tags", `"${item}" is listed twice`);
    seen.add(item);
    refs.push(ref);
  }
  return { tags: items, refs };
}

function parseKeyValues(raw: RawInputs, input: "build-args" | "labels"): KeyValue[] {
  const out: KeyValue[] = [];
  const seen = new Set<string>();
  for (const item of list(raw, input, false)) {
    const kv = splitKeyValue(item);
    if (!kv) {
      fail(
        input,
        `"${firstLine(item)}" is not KEY=VALUE (one per line; the key non-empty, without spaces)`,
      );
    }
    if (seen.has(kv.key)) fail(input, `"${kv.key}" is given twice`);
    seen.add(kv.key);
    out.push(kv);
  }
  return out;
}

function firstLine(s: string): string {
  const line = s.split("\n")[0]!;
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

function parseTarget(raw: RawInputs): string | undefined {
  const v = value(raw, "target");
  if (v === undefined) return undefined;
  if (!STAGE_NAME.test(v)) {
    fail("target", `"${v}" is not a stage name (a letter, then letters, digits, '-', '_' or '.')`);
  }
  return v;
}

function parseDuration(
  raw: RawInputs,
  input: "timeout" | "schedule-timeout" | "ttl" | "cache-ttl",
  min: number,
  max: number,
): number | undefined {
  const v = value(raw, input);
  if (v === undefined) return undefined;
  const range = `between ${formatDuration(min)} and ${formatDuration(max)}`;
  const allowed = `a duration like "30m", "1h30m", "90s" or a whole number of seconds, ${range}`;
  let seconds: number;
  try {
    seconds = parseDurationSeconds(v);
  } catch {
    fail(input, `"${v}" is not ${allowed}`);
  }
  const whole = Math.ceil(seconds);
  if (whole < min || whole > max) fail(input, `"${v}" is out of range: must be ${range}`);
  return whole;
}

/**
 * schedule-timeout is part of the Job's time, so it can never be longer than timeout: a value
 * given longer is an error (the Job's deadline would end the build first, so the value could never
 * take effect, which is a mistake worth one line), while the default (10m) is clamped to a shorter
 * timeout without a word, as the user asked for nothing there.
 */
function parseScheduleTimeout(raw: RawInputs, timeoutSeconds: number): number {
  const given = parseDuration(raw, "schedule-timeout", 1, MAX_TIMEOUT_SECONDS);
  if (given === undefined) return Math.min(DEFAULT_SCHEDULE_TIMEOUT_SECONDS, timeoutSeconds);
  if (given > timeoutSeconds) {
    fail(
      "schedule-timeout",
      `"${value(raw, "schedule-timeout")}" is longer than timeout (${formatDuration(timeoutSeconds)}): the Job's deadline would end the build first; give at most the timeout`,
    );
  }
  return given;
}

function parseCacheTtl(raw: RawInputs): string | undefined {
  const v = value(raw, "cache-ttl");
  if (v === undefined) return undefined;
  parseDuration(raw, "cache-ttl", 1, MAX_CACHE_TTL_SECONDS);
  if (!value(raw, "cache-repo"))
    fail("cache-ttl", 'needs "cache-repo": it is the age limit of that cache');
  return /^\d+$/.test(v) ? `${v}s` : v;
}

function parseCacheRepo(raw: RawInputs): ImageReference | undefined {
  const v = value(raw, "cache-repo");
  if (v === undefined) return undefined;
  const ref = parseRef("cache-repo", v, "a repository");
  if (ref.tag !== undefined || ref.digest !== undefined) {
    fail(
      "cache-repo",
      `"${v}" must be a repository without tag or digest (e.g. ghcr.io/acme/web/cache)`,
    );
  }
  return ref;
}

const REUSE_VALUES = ["auto", "never", "true", "false"];

/**
 * auto (default): reuse when there is a cache repository to record build keys in and the image is
 * pushed; never (or false, its boolean spelling): always build; true: as auto, but a missing cache
 * repository or push: false is an error.
 */
function parseReuse(raw: RawInputs, hasCacheRepo: boolean, push: boolean): boolean {
  const v = (value(raw, "reuse") ?? "auto").toLowerCase();
  if (!REUSE_VALUES.includes(v)) {
    fail("reuse", `"${value(raw, "reuse")}" is not one of ${REUSE_VALUES.join(", ")}`);
  }
  if (v === "never" || v === "false") return false;
  if (v === "true") {
    if (!hasCacheRepo)
      fail("reuse", 'needs "cache-repo": build keys are recorded as tags in that repository');
    if (!push) fail("reuse", 'needs "push": true; an image that is not pushed cannot be reused');
  }
  return hasCacheRepo && push;
}

const CACHE_TYPES = ["registry", "inline", "local", "gha", "s3", "azblob"];

/** buildx-style cache entries: `type=registry,ref=…[,k=v]` or a bare reference. Returns the refs. */
function parseCacheEntries(
  raw: RawInputs,
  input: "cache-from" | "cache-to",
): { entries: string[]; refs: ImageReference[] } {
  const entries = list(raw, input, false);
  const refs: ImageReference[] = [];
  for (const entry of entries) {
    if (!entry.includes("=")) {
      refs.push(parseRef(input, entry, "an image reference or a type=…,ref=… cache entry"));
      continue;
    }
    const fields: Record<string, string> = {};
    for (const field of entry.split(",")) {
      const eq = field.indexOf("=");
      if (eq <= 0) fail(input, `"${entry}" has a field "${field}" that is not key=value`);
      fields[field.slice(0, eq).trim().toLowerCase()] = field.slice(eq + 1).trim();
    }
    const type = fields["type"];
    if (type === undefined) fail(input, `"${entry}" needs type=registry (or inline)`);
    if (!CACHE_TYPES.includes(type))
      fail(input, `"${entry}" has unknown type "${type}" (${CACHE_TYPES.join(", ")})`);
    if (type !== "registry" && type !== "inline") {
      fail(input, `"${entry}": type=${type} cannot be reached from a build pod; use type=registry`);
    }
    if (type === "registry") {
      const ref = fields["ref"];
      if (!ref) fail(input, `"${entry}" needs ref=<image reference>`);
      refs.push(parseRef(input, ref));
    }
    if (fields["mode"] !== undefined && !["min", "max"].includes(fields["mode"])) {
      fail(input, `"${entry}" has mode=${fields["mode"]}; use min or max`);
    }
  }
  return { entries, refs };
}

function parsePlatforms(raw: RawInputs): string[] {
  const out: string[] = [];
  for (const p of list(raw, "platforms", true)) {
    const parts = p.split("/");
    if (parts.length < 2 || parts.length > 3 || !parts.every((x) => PLATFORM_PART.test(x))) {
      fail(
        "platforms",
        `"${p}" is not os/arch[/variant] in lowercase (e.g. linux/amd64, linux/arm/v7)`,
      );
    }
    if (out.includes(p)) fail("platforms", `"${p}" is listed twice`);
    out.push(p);
  }
  return out;
}

function parseSecrets(raw: RawInputs, env: ParseEnvironment): BuildSecret[] {
  const out: BuildSecret[] = [];
  const ids = new Set<string>();
  const checkId = (input: "secrets" | "secret-files", id: string) => {
    if (!SECRET_ID.test(id) || id === "." || id === "..") {
      fail(input, `secret id "${id}" may only hold letters, digits, '.', '_' and '-'`);
    }
    if (ids.has(id)) fail(input, `secret id "${id}" is given twice`);
    ids.add(id);
  };
  list(raw, "secrets", false).forEach((item, index) => {
    const eq = item.indexOf("=");
    // Never echo the item: its value is the secret.
    if (eq <= 0)
      fail("secrets", `entry ${index + 1} is not id=value (one per line; the value is not shown)`);
    const id = item.slice(0, eq).trim();
    checkId("secrets", id);
    const secretValue = item.slice(eq + 1);
    if (secretValue === "")
      fail("secrets", `secret "${id}" is empty (is the CI secret it comes from set?)`);
    out.push({ id, value: Buffer.from(secretValue, "utf8") });
  });
  const fromValues = out.length;
  for (const item of list(raw, "secret-files", false)) {
    const kv = splitKeyValue(item);
    if (!kv || kv.value.trim() === "")
      fail("secret-files", `"${firstLine(item)}" is not id=path (one per line)`);
    checkId("secret-files", kv.key);
    const path = resolve(env.workspace, kv.value.trim());
    let bytes: Buffer;
    try {
      if (!statSync(path).isFile())
        fail("secret-files", `"${kv.value.trim()}" for secret "${kv.key}" is not a file`);
      bytes = readFileSync(path);
    } catch (error) {
      if (error instanceof InputError) throw error;
      fail("secret-files", `cannot read "${kv.value.trim()}" for secret "${kv.key}"`);
    }
    out.push({ id: kv.key, value: bytes });
  }
  const total = out.reduce((sum, s) => sum + s.value.length, 0);
  if (total > MAX_SECRETS_BYTES) {
    const input = out.length > fromValues ? "secret-files" : "secrets";
    fail(
      input,
      `build secrets add up to ${total} bytes; a Kubernetes Secret holds at most ${MAX_SECRETS_BYTES}`,
    );
  }
  return out;
}

/**
 * A path from the workspace, resolved through symlinks; refuses one that leaves the workspace
 * when the adapter says paths are confined to it.
 */
function existingPath(input: InputName, given: string, env: ParseEnvironment): string {
  const root = realpathOr(env.workspace);
  const confined = env.confineToWorkspace ?? true;
  const target = resolve(root, given);
  let real: string;
  try {
    real = realpathSync(target);
  } catch {
    fail(input, `"${given}" does not exist${confined ? " under the workspace" : ""}`);
  }
  const rel = relative(root, real);
  if (confined && (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel))) {
    fail(input, `"${given}" leaves the workspace; give a path inside it`);
  }
  return real;
}

function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

const GIT_URL = /^(git:\/\/|https:\/\/)/;

function parseGitUrl(v: string): ContextSource {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    fail("context", `"${v}" is not a URL`);
  }
  if (url.username !== "" || url.password !== "") {
    fail(
      "context",
      "a git URL with credentials in it would be visible in the Job; use a public URL (the value is not shown)",
    );
  }
  if (url.protocol === "https:" && !url.pathname.endsWith(".git")) {
    fail(
      "context",
      `"${v}" is not a git URL: an https context must end in .git (optionally #ref[:subdir])`,
    );
  }
  if (url.hostname === "" || url.pathname === "" || url.pathname === "/") {
    fail("context", `"${v}" needs a host and a repository path`);
  }
  const fragment = url.hash.slice(1);
  if (fragment.includes("#"))
    fail("context", `"${v}" has more than one '#'; use <url>#<ref>[:<subdir>]`);
  const subdir = fragment.includes(":") ? fragment.slice(fragment.indexOf(":") + 1) : "";
  if (subdir !== "" && (subdir.startsWith("/") || posix.normalize(subdir).startsWith(".."))) {
    fail("context", `"${v}" has a subdirectory that leaves the repository`);
  }
  return { kind: "git", url: v };
}

function parseContext(raw: RawInputs, env: ParseEnvironment): ContextSource {
  const v = value(raw, "context") ?? ".";
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    if (!GIT_URL.test(v)) {
      fail(
        "context",
        `"${v}" is not supported: give a directory in the workspace or a git URL (git://… or https://….git)`,
      );
    }
    return parseGitUrl(v);
  }
  if (/^git@/.test(v)) fail("context", `"${v}": SSH git URLs are not supported; use https://….git`);
  const dir = existingPath("context", v, env);
  if (!statSync(dir).isDirectory()) fail("context", `"${v}" is not a directory`);
  return { kind: "dir", dir };
}

function parseFile(raw: RawInputs, env: ParseEnvironment, context: ContextSource): string {
  const v = value(raw, "file");
  if (context.kind === "git") {
    const f = v ?? "Dockerfile";
    const norm = posix.normalize(f.replace(/\\/g, "/"));
    if (posix.isAbsolute(norm) || norm === ".." || norm.startsWith("../")) {
      fail("file", `"${f}" must be a path inside the git repository`);
    }
    return norm;
  }
  if (v === undefined) {
    const path = resolve(context.dir, "Dockerfile");
    if (!isFile(path))
      fail("file", `no Dockerfile in the context directory; give its path with "file"`);
    return "Dockerfile";
  }
  const real = existingPath("file", v, env);
  if (!isFile(real)) fail("file", `"${v}" is not a file`);
  const rel = relative(context.dir, real);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    fail(
      "file",
      `"${v}" is outside the context directory; only the context is sent to the cluster`,
    );
  }
  return rel.split(sep).join("/");
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function parseNamespace(raw: RawInputs): string | undefined {
  const v = value(raw, "namespace");
  if (v === undefined) return undefined;
  const err = checkDns1123Label(v);
  if (err) fail("namespace", `"${v}" ${err}`);
  return v;
}

function parseServiceAccount(raw: RawInputs): string | undefined {
  const v = value(raw, "service-account");
  if (v === undefined) return undefined;
  const err = checkDns1123Subdomain(v);
  if (err) fail("service-account", `"${v}" ${err}`);
  return v;
}

function parseKubeContext(raw: RawInputs): string | undefined {
  const v = value(raw, "kube-context");
  if (v === undefined) return undefined;
  if (v.includes("\n")) fail("kube-context", "must be one context name");
  return v;
}

function looksLikeKubeconfig(text: string): boolean {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch {
    return false;
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return false;
  const keys = Object.keys(doc);
  return (
    ["clusters", "contexts", "users", "current-context"].some((k) => keys.includes(k)) ||
    (doc as Record<string, unknown>)["kind"] === "Config"
  );
}

/** Kubeconfig YAML, or base64 of it, decoded; undefined when the text is neither. */
function kubeconfigText(v: string): string | undefined {
  if (looksLikeKubeconfig(v)) return v;
  const compact = v.replace(/\s+/g, "");
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || /^[A-Za-z0-9_-]+={0,2}$/.test(compact)) {
    const decoded = Buffer.from(
      compact,
      compact.includes("-") || compact.includes("_") ? "base64url" : "base64",
    ).toString("utf8");
    if (looksLikeKubeconfig(decoded)) return decoded;
  }
  return undefined;
}

/** One line that is not base64 text: a path the user meant (it can be named in a message). */
function looksLikePath(v: string): boolean {
  return !/[\r\n]/.test(v) && v.length <= 4096 && /[/\\]/.test(v) && /[^A-Za-z0-9+/=_-]/.test(v);
}

/**
 * The kubeconfig input: a path to a kubeconfig file (what kubectl's --kubeconfig takes, and what
 * a GitLab "File" variable expands to), the YAML itself, or base64 of it. A path is resolved from
 * the workspace. Never echoes the value unless it is a path.
 */
function parseKubeconfig(
  raw: RawInputs,
  env: ParseEnvironment,
): { content: string; file?: string } | undefined {
  const v = value(raw, "kubeconfig");
  if (v === undefined) return undefined;
  const pathOf = (p: string): string =>
    p.startsWith("~/") && env.home !== undefined
      ? resolve(env.home, p.slice(2))
      : resolve(env.workspace, p);
  if (!/[\r\n]/.test(v) && v.length <= 4096) {
    const file = pathOf(v);
    let isRegularFile = false;
    try {
      isRegularFile = statSync(file).isFile();
    } catch {
      // not a path to an existing file: content, or a path that is missing (below)
    }
    if (isRegularFile) {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? String(error);
        fail("kubeconfig", `cannot read the file ${file} (${code})`);
      }
      const content = kubeconfigText(text);
      if (content === undefined)
        fail("kubeconfig", `the file ${file} is neither kubeconfig YAML nor base64 of it`);
      return { content, file };
    }
  }
  const content = kubeconfigText(v);
  if (content !== undefined) return { content };
  if (looksLikePath(v)) {
    fail(
      "kubeconfig",
      `there is no file ${pathOf(v)}; give the path of a kubeconfig file, its YAML, or base64 of it`,
    );
  }
  fail(
    "kubeconfig",
    "is neither the path of a kubeconfig file, kubeconfig YAML nor base64 of it (the value is not shown)",
  );
}

function parseNodeSelector(raw: RawInputs): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list(raw, "node-selector", true)) {
    const kv = splitKeyValue(item);
    if (!kv)
      fail("node-selector", `"${item}" is not key=value (a newline- or comma-separated list)`);
    const value_ = kv.value.trim();
    const keyErr = checkLabelKey(kv.key);
    if (keyErr) fail("node-selector", `label key "${kv.key}" ${keyErr}`);
    const valueErr = checkLabelValue(value_);
    if (valueErr) fail("node-selector", `label value "${value_}" ${valueErr}`);
    if (kv.key in out) fail("node-selector", `"${kv.key}" is given twice`);
    out[kv.key] = value_;
  }
  return out;
}

const TOLERATION_FIELDS = ["key", "operator", "value", "effect", "tolerationSeconds"];
const EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

function parseTolerations(raw: RawInputs): Toleration[] {
  const v = value(raw, "tolerations");
  if (v === undefined) return [];
  let doc: unknown;
  try {
    doc = parseYaml(v);
  } catch {
    fail(
      "tolerations",
      "is not valid YAML; give a YAML list of tolerations (key, operator, value, effect, tolerationSeconds)",
    );
  }
  if (!Array.isArray(doc))
    fail(
      "tolerations",
      "must be a YAML list of tolerations (key, operator, value, effect, tolerationSeconds)",
    );
  return doc.map((item: unknown, i): Toleration => {
    const at = `item ${i + 1}`;
    if (item === null || typeof item !== "object" || Array.isArray(item))
      fail("tolerations", `${at} is not a mapping`);
    const o = item as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!TOLERATION_FIELDS.includes(k))
        fail("tolerations", `${at} has unknown field "${k}" (${TOLERATION_FIELDS.join(", ")})`);
    }
    for (const k of ["key", "operator", "value", "effect"]) {
      if (o[k] !== undefined && o[k] !== null && typeof o[k] !== "string")
        fail("tolerations", `${at}: "${k}" must be a string`);
    }
    const t: Toleration = {};
    const key = (o["key"] as string | undefined) ?? "";
    const operator = (o["operator"] as string | undefined) ?? "Equal";
    const val = (o["value"] as string | undefined) ?? "";
    const effect = (o["effect"] as string | undefined) ?? "";
    if (operator !== "Equal" && operator !== "Exists")
      fail("tolerations", `${at}: operator must be Equal or Exists`);
    if (key !== "") {
      const err = checkLabelKey(key);
      if (err) fail("tolerations", `${at}: key "${key}" ${err}`);
      t.key = key;
    } else if (operator !== "Exists") {
      fail("tolerations", `${at}: an empty key needs operator Exists`);
    }
    if (o["operator"] !== undefined) t.operator = operator;
    if (operator === "Exists" && val !== "")
      fail("tolerations", `${at}: value must be empty with operator Exists`);
    if (val !== "") {
      const err = checkLabelValue(val);
      if (err) fail("tolerations", `${at}: value "${val}" ${err}`);
      t.value = val;
    }
    if (effect !== "") {
      if (!EFFECTS.includes(effect))
        fail("tolerations", `${at}: effect must be one of ${EFFECTS.join(", ")}`);
      t.effect = effect as Toleration["effect"];
    }
    const seconds = o["tolerationSeconds"];
    if (seconds !== undefined && seconds !== null) {
      if (typeof seconds !== "number" || !Number.isInteger(seconds))
        fail("tolerations", `${at}: tolerationSeconds must be an integer`);
      if (effect !== "NoExecute")
        fail("tolerations", `${at}: tolerationSeconds needs effect NoExecute`);
      t.tolerationSeconds = seconds;
    }
    return t;
  });
}

function parseResources(raw: RawInputs): ResourceRequirements {
  const out: ResourceRequirements = { requests: {}, limits: {} };
  const v = value(raw, "resources");
  if (v === undefined) return out;
  const shape =
    'a YAML mapping like "requests: {cpu: 500m, memory: 1Gi}" and/or "limits: {memory: 2Gi}"';
  let doc: unknown;
  try {
    // failsafe: every scalar stays the string that was written ("0.5", "1e3", "1Gi").
    doc = parseYaml(v, { schema: "failsafe" });
  } catch {
    fail("resources", `is not valid YAML; give ${shape}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    fail("resources", `must be ${shape}`);
  for (const [section, body] of Object.entries(doc as Record<string, unknown>)) {
    if (section !== "requests" && section !== "limits") {
      fail("resources", `has "${section}"; only "requests" and "limits" are allowed`);
    }
    if (body === null || body === "") continue;
    if (typeof body !== "object" || Array.isArray(body))
      fail("resources", `"${section}" must be a mapping of resource name to quantity`);
    for (const [name, quantity] of Object.entries(body as Record<string, unknown>)) {
      if (!STANDARD_RESOURCES.includes(name) && !EXTENDED_RESOURCE.test(name)) {
        fail(
          "resources",
          `unknown resource "${name}" in ${section} (cpu, memory, ephemeral-storage, or a domain-qualified name like nvidia.com/gpu)`,
        );
      }
      if (typeof quantity !== "string") fail("resources", `${section}.${name} must be a quantity`);
      guard("resources", () => parseQuantity(quantity), `${section}.${name}: `);
      out[section][name] = quantity;
    }
  }
  for (const [name, request] of Object.entries(out.requests)) {
    const limit = out.limits[name];
    if (limit !== undefined && parseQuantity(request) > parseQuantity(limit)) {
      fail("resources", `requests.${name} (${request}) is more than limits.${name} (${limit})`);
    }
  }
  return out;
}

function parseImage(
  raw: RawInputs,
  input: "builder-image" | "context-image",
  fallback: string,
): string {
  const v = value(raw, input);
  if (v === undefined) return fallback;
  parseRef(input, v);
  return v;
}

function parseInsecureRegistries(raw: RawInputs): string[] {
  const out: string[] = [];
  for (const item of list(raw, "insecure-registries", true)) {
    const host = guard("insecure-registries", () =>
      parseRegistryHost(item.replace(/^https?:\/\//, "").replace(/\/$/, "")),
    );
    if (!out.includes(host)) out.push(host);
  }
  return out;
}

function decodeJsonObject(text: string): Record<string, unknown> | undefined {
  const tryParse = (s: string): Record<string, unknown> | undefined => {
    try {
      const v: unknown = JSON.parse(s);
      return v !== null && typeof v === "object" && !Array.isArray(v)
        ? (v as Record<string, unknown>)
        : undefined;
    } catch {
      return undefined;
    }
  };
  const direct = tryParse(text);
  if (direct) return direct;
  const compact = text.replace(/\s+/g, "");
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(compact))
    return tryParse(Buffer.from(compact, "base64").toString("utf8"));
  return undefined;
}

function parseRegistryAuth(raw: RawInputs, refs: ImageReference[]): RegistryAuth | undefined {
  const username = value(raw, "registry-username");
  // The password is taken as given (only surrounding whitespace dropped, as for every input).
  const password = value(raw, "registry-password");
  const configJson = value(raw, "docker-config-json");
  if (configJson !== undefined && (username !== undefined || password !== undefined)) {
    fail(
      "docker-config-json",
      'cannot be combined with "registry-username"/"registry-password"; give one kind of credentials',
    );
  }
  if (username !== undefined && password === undefined)
    fail("registry-password", 'is required when "registry-username" is set');
  if (password !== undefined && username === undefined)
    fail("registry-username", 'is required when "registry-password" is set');
  if (username !== undefined && password !== undefined) {
    if (username.includes(":") || /\s/.test(username))
      fail("registry-username", "must not contain ':' or whitespace");
    const registries: string[] = [];
    for (const ref of refs) {
      const key = registryAuthKey(ref.domain);
      if (!registries.includes(key)) registries.push(key);
    }
    return { kind: "basic", username, password, registries };
  }
  if (configJson !== undefined) {
    const obj = decodeJsonObject(configJson);
    const auths = obj?.["auths"];
    if (!obj || auths === null || typeof auths !== "object" || Array.isArray(auths)) {
      fail(
        "docker-config-json",
        'must be a Docker config.json with an "auths" object, raw or base64 (the value is not shown)',
      );
    }
    return { kind: "docker-config-json", json: JSON.stringify(withoutCredentialHelpers(obj)) };
  }
  return undefined;
}

function hasInlineCredentials(entry: unknown): boolean {
  if (entry === null || typeof entry !== "object") return false;
  const e = entry as Record<string, unknown>;
  const filled = (k: string) => typeof e[k] === "string" && e[k] !== "";
  return filled("auth") || (filled("username") && filled("password")) || filled("identitytoken");
}

/**
 * A config.json from a workstation names credential helpers (credsStore, credHelpers) that keep
 * the passwords on that machine; the build pod has no docker-credential-* program, so the push
 * would fail there. The keys are dropped when every registry's credentials are inline anyway;
 * otherwise the input is refused, naming the registries and the helper.
 */
function withoutCredentialHelpers(obj: Record<string, unknown>): Record<string, unknown> {
  const credsStore = typeof obj["credsStore"] === "string" ? obj["credsStore"] : undefined;
  const helpers = obj["credHelpers"];
  const credHelpers: Record<string, unknown> =
    helpers !== null && typeof helpers === "object" && !Array.isArray(helpers)
      ? (helpers as Record<string, unknown>)
      : {};
  if (credsStore === undefined && !("credHelpers" in obj)) return obj;
  const auths = obj["auths"] as Record<string, unknown>;
  const stored = new Set<string>();
  if (credsStore !== undefined) {
    for (const [registry, entry] of Object.entries(auths))
      if (!hasInlineCredentials(entry)) stored.add(registry);
  }
  for (const registry of Object.keys(credHelpers))
    if (!hasInlineCredentials(auths[registry])) stored.add(registry);
  if (stored.size > 0 || Object.keys(auths).length === 0) {
    const names = [...new Set(Object.values(credHelpers).filter((h) => typeof h === "string"))];
    if (credsStore !== undefined) names.unshift(credsStore);
    const helper = names.map((n) => `docker-credential-${n}`).join(", ") || "a credential helper";
    const which = stored.size > 0 ? `for ${[...stored].join(", ")} ` : "";
    fail(
      "docker-config-json",
      `the credentials ${which}are kept by ${helper} on the machine this config.json comes from, not in the file, and the build pod has no such helper; give a config.json whose "auths" entries hold "auth" (docker login with DOCKER_CONFIG set to an empty directory writes one), or use registry-username and registry-password`,
    );
  }
  const rest = { ...obj };
  delete rest["credsStore"];
  delete rest["credHelpers"];
  return rest;
}

function parseBuilder(raw: RawInputs): BuilderName {
  const v = value(raw, "builder") ?? "kaniko";
  if (!isBuilderName(v))
    fail("builder", `"${v}" is not a builder; use one of ${BUILDER_NAMES.join(", ")}`);
  return v;
}

/** Every input → one BuildSpec, or an InputError naming the first bad input. */
/**
 * Only what reaching the cluster needs (kubeconfig, kube-context, namespace) and keep-job: for a
 * cleanup step, which must work even when the context or a secret file is already gone.
 */
export function parseClusterInputs(
  raw: RawInputs,
  env: ParseEnvironment,
): { cluster: ClusterSource; keepJob: boolean; namespace?: string } {
  const namespace = parseNamespace(raw);
  return {
    cluster: clusterSource(raw, env),
    keepJob: bool(raw, "keep-job", false),
    ...(namespace !== undefined ? { namespace } : {}),
  };
}

function clusterSource(raw: RawInputs, env: ParseEnvironment): ClusterSource {
  const kubeconfig = parseKubeconfig(raw, env);
  const kubeContext = parseKubeContext(raw);
  const cluster: ClusterSource = { kubeconfigPaths: [...env.kubeconfigPaths] };
  if (kubeconfig !== undefined) cluster.kubeconfigContent = kubeconfig.content;
  if (kubeconfig?.file !== undefined) cluster.kubeconfigFile = kubeconfig.file;
  if (env.inCluster !== undefined) cluster.inCluster = env.inCluster;
  if (kubeContext !== undefined) cluster.context = kubeContext;
  if (env.proxy !== undefined) cluster.proxy = env.proxy;
  return cluster;
}

/**
 * Only the registry inputs (tags, credentials, insecure registries): for removing preview tags
 * when a pull request closes, which needs no checkout and no cluster.
 */
export function parseRegistryInputs(
  raw: RawInputs,
): Pick<BuildSpec, "registryAuth" | "insecureRegistries"> {
  const { refs } = parseTags(raw);
  const registryAuth = parseRegistryAuth(raw, refs);
  return {
    insecureRegistries: parseInsecureRegistries(raw),
    ...(registryAuth !== undefined ? { registryAuth } : {}),
  };
}

export function parseBuildSpec(raw: RawInputs, env: ParseEnvironment): BuildSpec {
  const context = parseContext(raw, env);
  const dockerfile = parseFile(raw, env, context);
  const { tags, refs: tagRefs } = parseTags(raw);
  const buildArgs = parseKeyValues(raw, "build-args");
  const labels = parseKeyValues(raw, "labels");
  const target = parseTarget(raw);
  const push = bool(raw, "push", true);
  const cacheRepoRef = parseCacheRepo(raw);
  const cacheTtl = parseCacheTtl(raw);
  const reuse = parseReuse(raw, cacheRepoRef !== undefined, push);
  const platforms = parsePlatforms(raw);
  const cacheFrom = parseCacheEntries(raw, "cache-from");
  const cacheTo = parseCacheEntries(raw, "cache-to");
  const secrets = parseSecrets(raw, env);
  const cluster = clusterSource(raw, env);
  const namespace = parseNamespace(raw);
  const serviceAccount = parseServiceAccount(raw);
  const builderName = parseBuilder(raw);
  const builder = getBuilder(builderName);
  const builderImage = parseImage(raw, "builder-image", builder.defaultImage);
  const contextImage = parseImage(raw, "context-image", DEFAULT_CONTEXT_IMAGE);
  const nodeSelector = parseNodeSelector(raw);
  const tolerations = parseTolerations(raw);
  const resources = parseResources(raw);
  const timeoutSeconds =
    parseDuration(raw, "timeout", 1, MAX_TIMEOUT_SECONDS) ?? DEFAULT_TIMEOUT_SECONDS;
  const scheduleTimeoutSeconds = parseScheduleTimeout(raw, timeoutSeconds);
  const ttlSeconds = parseDuration(raw, "ttl", 1, MAX_TTL_SECONDS) ?? DEFAULT_TTL_SECONDS;
  const keepJob = bool(raw, "keep-job", false);
  const registryAuth = parseRegistryAuth(raw, [
    ...tagRefs,
    ...(cacheRepoRef ? [cacheRepoRef] : []),
    ...cacheFrom.refs,
    ...cacheTo.refs,
  ]);
  const insecureRegistries = parseInsecureRegistries(raw);
  const allowPrivileged = bool(raw, "allow-privileged", false);
  const dryRun = bool(raw, "dry-run", false);

  const spec: BuildSpec = {
    context,
    dockerfile,
    tags,
    buildArgs,
    labels,
    push,
    platforms,
    cacheFrom: cacheFrom.entries,
    cacheTo: cacheTo.entries,
    secrets,
    cluster,
    builder: builderName,
    builderImage,
    contextImage,
    nodeSelector,
    tolerations,
    resources,
    timeoutSeconds,
    scheduleTimeoutSeconds,
    ttlSeconds,
    keepJob,
    reuse,
    insecureRegistries,
    allowPrivileged,
    dryRun,
  };
  if (target !== undefined) spec.target = target;
  if (cacheRepoRef !== undefined) spec.cacheRepo = value(raw, "cache-repo")!;
  if (cacheTtl !== undefined) spec.cacheTtl = cacheTtl;
  if (namespace !== undefined) spec.namespace = namespace;
  if (serviceAccount !== undefined) spec.serviceAccount = serviceAccount;
  if (registryAuth !== undefined) spec.registryAuth = registryAuth;

  const unsupported = unsupportedInput(builder, spec);
  if (unsupported) throw new InputError(unsupported.input, unsupported.detail);
  return spec;
}
