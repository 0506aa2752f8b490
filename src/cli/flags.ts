/**
 * argv → flags and positionals, with answers in the CLI's own words: an unknown flag names the
 * closest known one, a switch given a value names the values it takes. Knows nothing of inputs
 * or commands: each command passes the flags it takes.
 */
import { parseArgs } from "node:util";

export interface FlagSet {
  /** Switches: `--name`, `--no-name`, `--name=true|false`. */
  switches: ReadonlySet<string>;
  /** Flags with a value: `--name value`, `--name=value`; every occurrence is kept. */
  values: ReadonlySet<string>;
  /** One-letter aliases, e.g. `h` → `help`. */
  short?: Readonly<Record<string, string>>;
}

export interface ParsedFlags {
  positionals: string[];
  switches: Map<string, boolean>;
  values: Map<string, string[]>;
}

/** A command line that cannot be read: `flag` is the flag it is about, when there is one. */
export class FlagError extends Error {
  constructor(
    message: string,
    readonly flag?: string,
    /** The message without the flag's name, for callers that name the flag their own way. */
    readonly detail: string = message,
  ) {
    super(message);
    this.name = "FlagError";
  }
}

const TRUE_WORDS = ["true", "True", "TRUE"];
const FALSE_WORDS = ["false", "False", "FALSE"];

function switchUsage(name: string): string {
  return `use --${name} or --no-${name} (or --${name}=true / --${name}=false)`;
}

export function parseFlags(argv: string[], flags: FlagSet): ParsedFlags {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const name of flags.switches) options[name] = { type: "boolean" };
  for (const name of flags.values) options[name] = { type: "string" };
  const { tokens } = parseArgs({
    args: argv,
    options,
    allowPositionals: true,
    allowNegative: true,
    strict: false,
    tokens: true,
  });
  const known = [...flags.switches, ...flags.values];
  const out: ParsedFlags = { positionals: [], switches: new Map(), values: new Map() };
  // A switch directly followed by a word: `--push maybe` reads as the switch and a stray word.
  let lastSwitch: string | undefined;
  let afterTerminator = false;
  for (const token of tokens) {
    if (token.kind === "option-terminator") {
      afterTerminator = true;
      lastSwitch = undefined;
      continue;
    }
    if (token.kind === "positional") {
      if (lastSwitch !== undefined && !afterTerminator) {
        throw new FlagError(
          `--${lastSwitch} takes no value, got "${token.value}"; ${switchUsage(lastSwitch)}`,
          lastSwitch,
        );
      }
      out.positionals.push(token.value);
      lastSwitch = undefined;
      continue;
    }
    lastSwitch = undefined;
    const short = token.rawName.startsWith("--") ? undefined : flags.short?.[token.name];
    const name = short ?? token.name;
    const negated = token.rawName.startsWith("--no-") && name !== token.rawName.slice(2);
    if (flags.switches.has(name)) {
      if (token.value === undefined) {
        out.switches.set(name, !negated);
        if (!negated) lastSwitch = name;
        continue;
      }
      const word = token.value;
      const value = TRUE_WORDS.includes(word) ? true : FALSE_WORDS.includes(word) ? false : null;
      if (value === null || negated) {
        throw new FlagError(
          `"${word}" is not a value of --${name}; ${switchUsage(name)}`,
          name,
          `"${word}" is not a boolean; ${switchUsage(name)}`,
        );
      }
      out.switches.set(name, value);
      continue;
    }
    if (flags.values.has(name) && !negated) {
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith("-"))) {
        const got = token.value === undefined ? "" : ` (got "${token.value}")`;
        throw new FlagError(`--${name} needs a value${got}`, name);
      }
      out.values.set(name, [...(out.values.get(name) ?? []), token.value]);
      continue;
    }
    const negatedSwitch = name.startsWith("no-") ? name.slice(3) : undefined;
    if (negatedSwitch !== undefined && flags.switches.has(negatedSwitch)) {
      throw new FlagError(
        `--no-${negatedSwitch} takes no value; ${switchUsage(negatedSwitch)}`,
        negatedSwitch,
      );
    }
    const suggestion = negated && flags.values.has(name) ? undefined : closest(name, known);
    const hint =
      negated && flags.values.has(name)
        ? `--${name} takes a value, it has no --no- form`
        : suggestion
          ? `did you mean --${suggestion}?`
          : "see --help";
    throw new FlagError(`unknown flag ${token.rawName} (${hint})`);
  }
  return out;
}

/** The known flag nearest to `name` (a typo, a missing or extra letter, a prefix), if any is near. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  if (best !== undefined && bestDistance <= limit) return best;
  const prefixed = known.filter((k) => k.startsWith(name) || name.startsWith(k));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
