/** The bundle's entry points: dist/main.js, dist/post.js and dist/cli.js each call one. */
export { runActionMain } from "./github/main.js";
export { runActionPost } from "./github/post.js";
export { runCli } from "./cli/cli.js";
export { build, renderBuildManifests } from "./core/build.js";
export { parseBuildSpec } from "./core/spec/spec.js";
