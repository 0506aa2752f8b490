#!/usr/bin/env node
import { runCli } from "./lib.js";

await runCli();
