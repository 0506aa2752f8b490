import { runActionPost } from "./lib.js";

await runActionPost();
