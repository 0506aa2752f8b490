/** The post step: deletes whatever the saved state names (main was killed before it could). */
import * as core from "@actions/core";
import { deleteBuildObjects } from "../core/job/cleanup.js";
import { connect, createClients } from "../core/cluster/connection.js";
import { parseClusterInputs } from "../core/spec/spec.js";
import { parseEnvironment } from "./environment.js";
import { readRawInputs } from "./main.js";
import { loadObjects } from "./state.js";

export async function runActionPost(): Promise<void> {
  const objects = loadObjects();
  if (!objects || (!objects.job && objects.secrets.length === 0)) return;
  try {
    // Only the cluster inputs: the context or a secret file may be gone by now.
    const { cluster, keepJob } = parseClusterInputs(readRawInputs(), parseEnvironment());
    if (keepJob) return;
    const clients = createClients(connect(cluster).kubeConfig);
    const { deleted } = await deleteBuildObjects(clients, objects, {
      onWarning: (message) => core.warning(message),
    });
    if (deleted.length > 0) core.info(`Cleaned up ${deleted.join(", ")} in ${objects.namespace}`);
  } catch (error) {
    core.warning(
      `cleanup: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`,
    );
  }
}
