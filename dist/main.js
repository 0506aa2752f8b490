import { enableCompileCache } from "node:module";

enableCompileCache?.();
const { runActionMain } = await import("./lib.js");

await runActionMain();
