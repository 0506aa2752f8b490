import { runActionMain } from "./lib.js";

await runActionMain();
