/**
 * Small strict parsers for the grammars the inputs use: image references (distribution/reference),
 * lists, KEY=VALUE lines, booleans, Go-style durations, Kubernetes names, label keys/values and
 * resource quantities. Each throws ParseError with a one-line message saying what is allowed;
 * spec.ts turns that into an InputError naming the input.
 */

export class ParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ParseError";
  }
}

// ---------------------------------------------------------------------------------------------
// Image references: github.com/distribution/reference (regexp.go, normalize.go, reference.go)
// ---------------------------------------------------------------------------------------------

const alphanumeric = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const domainNameComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const optionalPort = "(?::[0-9]+)?";
const tagPat = "[\\w][\\w.-]{0,127}";
const digestPat = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const ipv6address = "\\[(?:[a-fA-F0-9:]+)\\]";
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = `${host}${optionalPort}`;
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;

const referenceRegexp = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const anchoredNameRegexp = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const anchoredIdentifierRegexp = /^[a-f0-9]{64}$/;
const anchoredDomainAndPort = new RegExp(`^${domainAndPort}$`);
const nameTotalLengthMax = 255;

const defaultDomain = "docker.io";
const legacyDefaultDomain = "index.docker.io";
/** The key Docker (and every registry client) uses for Docker Hub in config.json. */
export const DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";

/** Digest algorithms go-digest knows, with the exact length of their hex encoding. */
const digestAlgorithms: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export interface ImageReference {
  /** Registry host[:port], normalized ("docker.io" for Docker Hub). */
  domain: string;
  /** Repository path within the registry, normalized ("library/ubuntu"). */
  path: string;
  tag?: string;
  digest?: string;
}

/** `domain/path` as distribution's Named.Name() gives it. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The config.json `auths` key for a registry domain. */
export function registryAuthKey(domain: string): string {
  return domain === defaultDomain ? DOCKER_HUB_AUTH_KEY : domain;
}

function splitDockerDomain(name: string): [string, string] {
  let domain: string;
  let remainder: string;
  const slash = name.indexOf("/");
  if (slash === -1) {
    domain = defaultDomain;
    remainder = name;
  } else {
    const maybeDomain = name.slice(0, slash);
    const maybeRemainder = name.slice(slash + 1);
    if (maybeDomain === "localhost") {
      [domain, remainder] = [maybeDomain, maybeRemainder];
    } else if (maybeDomain === legacyDefaultDomain) {
      [domain, remainder] = [defaultDomain, maybeRemainder];
    } else if (/[.:]/.test(maybeDomain)) {
      [domain, remainder] = [maybeDomain, maybeRemainder];
    } else if (maybeDomain.toLowerCase() !== maybeDomain) {
      [domain, remainder] = [maybeDomain, maybeRemainder];
    } else {
      [domain, remainder] = [defaultDomain, name];
    }
  }
  if (domain === defaultDomain && !remainder.includes("/")) remainder = `library/${remainder}`;
  return [domain, remainder];
}

function validateDigest(digest: string): void {
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  const length = digestAlgorithms[algorithm];
  if (length === undefined) throw new ParseError(`unsupported digest algorithm "${algorithm}"`);
  if (encoded.length !== length) throw new ParseError(`invalid checksum digest length`);
  if (!/^[a-f0-9]+$/.test(encoded)) throw new ParseError(`invalid checksum digest format`);
}

/** distribution/reference Parse(): the fully qualified grammar, no normalization. */
function parseQualified(s: string): ImageReference {
  const m = referenceRegexp.exec(s);
  if (!m) {
    if (s === "") throw new ParseError("repository name must have at least one component");
    if (referenceRegexp.test(s.toLowerCase()))
      throw new ParseError("repository name must be lowercase");
    throw new ParseError("invalid reference format");
  }
  const name = m[1]!;
  if (name.length > nameTotalLengthMax) {
    throw new ParseError(`repository name must not be more than ${nameTotalLengthMax} characters`);
  }
  const nm = anchoredNameRegexp.exec(name)!;
  const ref: ImageReference = { domain: nm[1] ?? "", path: nm[2]! };
  if (m[2] !== undefined) ref.tag = m[2];
  if (m[3] !== undefined) {
    validateDigest(m[3]);
    ref.digest = m[3];
  }
  return ref;
}

/**
 * distribution/reference ParseNormalizedNamed(): accepts familiar names ("ubuntu",
 * "acme/web:1") and fully qualified ones, normalizing Docker Hub names.
 */
export function parseImageReference(s: string): ImageReference {
  if (anchoredIdentifierRegexp.test(s)) {
    throw new ParseError("cannot specify 64-byte hexadecimal strings as a repository name");
  }
  const [domain, remainder] = splitDockerDomain(s);
  const tagSep = remainder.indexOf(":");
  const remote = tagSep > -1 ? remainder.slice(0, tagSep) : remainder;
  if (remote.toLowerCase() !== remote) throw new ParseError("repository name must be lowercase");
  const ref = parseQualified(`${domain}/${remainder}`);
  if (ref.domain === "") throw new ParseError("invalid reference format");
  return ref;
}

/** A registry host with optional port, as the reference grammar's domain part. */
export function parseRegistryHost(s: string): string {
  if (!anchoredDomainAndPort.test(s)) {
    throw new ParseError(`"${s}" is not a registry host[:port]`);
  }
  const port = /:([0-9]+)$/.exec(s);
  if (port && (Number(port[1]) < 1 || Number(port[1]) > 65535)) {
    throw new ParseError(`"${s}" has a port outside 1-65535`);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

/**
 * Splits a list input the way docker/build-push-action does: one item per line (and per comma
 * when `comma` is set), items trimmed, empty items dropped. An item that starts with a double
 * quote runs to the closing quote and may span lines or hold commas; `""` inside is one quote.
 */
export function splitList(raw: string, opts: { comma: boolean }): string[] {
  const items: string[] = [];
  const isSep = (c: string) => c === "\n" || (opts.comma && c === ",");
  let i = 0;
  const n = raw.length;
  while (i < n) {
    while (i < n && (raw[i] === " " || raw[i] === "\t" || raw[i] === "\r")) i++;
    if (i >= n) break;
    if (raw[i] === '"') {
      let value = "";
      i++;
      let closed = false;
      while (i < n) {
        if (raw[i] === '"') {
          if (raw[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          closed = true;
          i++;
          break;
        }
        value += raw[i];
        i++;
      }
      if (!closed) throw new ParseError("an item starts with a double quote that is never closed");
      while (i < n && (raw[i] === " " || raw[i] === "\t" || raw[i] === "\r")) i++;
      if (i < n && !isSep(raw[i]!)) {
        throw new ParseError("text follows a closing double quote before the end of the item");
      }
      i++;
      if (value !== "") items.push(value);
      continue;
    }
    const start = i;
    while (i < n && !isSep(raw[i]!)) i++;
    const item = raw.slice(start, i).trim();
    i++;
    if (item !== "") items.push(item);
  }
  return items;
}

/** `KEY=VALUE` split at the first "="; the key must be non-empty and free of whitespace. */
export function splitKeyValue(item: string): { key: string; value: string } | undefined {
  const eq = item.indexOf("=");
  if (eq <= 0) return undefined;
  const key = item.slice(0, eq).trim();
  if (key === "" || /\s/.test(key)) return undefined;
  return { key, value: item.slice(eq + 1) };
}

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

const TRUE_VALUES = ["true", "True", "TRUE"];
const FALSE_VALUES = ["false", "False", "FALSE"];

/** YAML 1.2 core schema booleans, as @actions/core getBooleanInput accepts them. */
export function parseBoolean(s: string): boolean {
  if (TRUE_VALUES.includes(s)) return true;
  if (FALSE_VALUES.includes(s)) return false;
  throw new ParseError(
    `"${s}" is not a boolean; use one of true | True | TRUE | false | False | FALSE`,
  );
}

const unitSeconds: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  "\u00b5s": 1e-6,
  "\u03bcs": 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};
const durationRegexp = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$/;
const durationPart = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/g;

/**
 * A Go time.ParseDuration string without sign ("30m", "1h30m", "1.5h", "90s") or a whole number of
 * seconds ("600"). Returns seconds.
 */
export function parseDurationSeconds(s: string): number {
  if (/^\d+$/.test(s)) return Number(s);
  if (!durationRegexp.test(s)) throw new ParseError("not a duration");
  let total = 0;
  for (const m of s.matchAll(durationPart)) total += Number(m[1]) * unitSeconds[m[2]!]!;
  return total;
}

/** Formats whole seconds as a Go duration ("1h30m", "90s" → "1m30s"). */
export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  let out = "";
  if (h) out += `${h}h`;
  if (m) out += `${m}m`;
  if (s || out === "") out += `${s}s`;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Kubernetes names (k8s.io/apimachinery/pkg/util/validation)
// ---------------------------------------------------------------------------------------------

const dns1123LabelRegexp = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123SubdomainRegexp = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const qualifiedNameRegexp = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function checkDns1123Label(s: string): string | undefined {
  if (s.length > 63) return "must be no more than 63 characters";
  if (!dns1123LabelRegexp.test(s)) {
    return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit";
  }
  return undefined;
}

export function checkDns1123Subdomain(s: string): string | undefined {
  if (s.length > 253) return "must be no more than 253 characters";
  if (!dns1123SubdomainRegexp.test(s)) {
    return "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit";
  }
  return undefined;
}

/** A label (or annotation) key: [prefix/]name, prefix a DNS-1123 subdomain, name ≤ 63. */
export function checkLabelKey(s: string): string | undefined {
  const parts = s.split("/");
  let name: string;
  if (parts.length === 1) {
    name = parts[0]!;
  } else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix === "") return "has an empty prefix before '/'";
    const err = checkDns1123Subdomain(prefix);
    if (err) return `prefix ${err}`;
  } else {
    return "may contain at most one '/'";
  }
  if (name === "") return "has an empty name";
  if (name.length > 63) return "name must be no more than 63 characters";
  if (!qualifiedNameRegexp.test(name)) {
    return "name must be alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character";
  }
  return undefined;
}

export function checkLabelValue(s: string): string | undefined {
  if (s.length > 63) return "must be no more than 63 characters";
  if (s !== "" && !qualifiedNameRegexp.test(s)) {
    return "must be empty or alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character";
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Resource quantities (k8s.io/apimachinery/pkg/api/resource)
// ---------------------------------------------------------------------------------------------

const binarySI: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const decimalSI: Record<string, number> = {
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};
const quantityRegexp = /^\+?(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

/**
 * A non-negative Kubernetes quantity ("500m", "1", "1.5", "2Gi", "128974848", "129e6", "129M").
 * Returns its value as a number (for comparisons only).
 */
export function parseQuantity(s: string): number {
  const m = quantityRegexp.exec(s);
  if (!m) throw new ParseError(`"${s}" is not a quantity`);
  const num = Number(m[1]);
  const suffix = m[2] ?? "";
  if (suffix in binarySI) return num * binarySI[suffix]!;
  if (suffix in decimalSI) return num * decimalSI[suffix]!;
  return num * 10 ** Number(suffix.slice(1));
}
