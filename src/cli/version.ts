/** The package's version, bundled into dist/ (the job image has no package.json beside the CLI). */
import packageJson from "../../package.json" with { type: "json" };

export const VERSION: string = packageJson.version;
