/**
 * The Node.js the CLI needs, checked by dist/cli.js before the bundle loads: on an older Node the
 * bundled Kubernetes client (undici) would fail while loading, with a stack trace.
 */
export const REQUIRED_NODE_MAJOR = 24;

/** One line saying what is needed, or undefined when `version` (process.versions.node) will do. */
export function nodeVersionProblem(version: string, executable: string): string | undefined {
  const major = Number.parseInt(version.split(".")[0] ?? "", 10);
  if (Number.isFinite(major) && major >= REQUIRED_NODE_MAJOR) return undefined;
  return `k8s-image-build needs Node.js ${REQUIRED_NODE_MAJOR} or later; this is Node.js ${version} (${executable})`;
}
