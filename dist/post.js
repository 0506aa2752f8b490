import { enableCompileCache } from "node:module";

enableCompileCache?.();
const { runActionPost } = await import("./lib.js");

await runActionPost();
