/** The build context's path: walk with .dockerignore (plan), gzip tar (tar), attach upload (upload). */
export { planContext, type ContextEntry, type ContextPlan } from "./plan.js";
export { tarContext } from "./tar.js";
export { parseDockerignore, PatternMatcher } from "./dockerignore.js";
export { uploadContext } from "./upload.js";
