/**
 * The component run by gitlab-ci-local (a third-party GitLab CI runner) in its shell executor:
 * a pipeline includes templates/build.yml as a component with inputs, the build job runs the CLI
 * against the Kubernetes API test server through a GitLab-agent-style $KUBECONFIG file variable,
 * and a downstream job reads IMAGE_DIGEST from the dotenv report.
 */
import { readFileSync } from "node:fs";
import { parse, stringify } from "yaml";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import { artifactPath, jobOutput, makeProject, makeToolsDir, runGcl } from "./support/gcl.js";

const AGENT_CONTEXT = "acme/infra/agents:ci-builder";
const DIGEST = `sha256:${"5e".repeat(32)}`;
const PREDEFINED =
  "GITLAB_CI,CI_REGISTRY,CI_REGISTRY_USER,CI_REGISTRY_PASSWORD,CI_MERGE_REQUEST_IID";

let cluster: TestCluster;
let tools: string;
beforeAll(async () => {
  [cluster, tools] = await Promise.all([startTestCluster(), makeToolsDir()]);
  cluster.createNamespace("ci-builds");
}, 120_000);
afterAll(async () => {
  await cluster?.close();
});

/**
 * A kubeconfig as the GitLab agent hands it over: the agent's context by its
 * `path/to/agent-project:agent-name`, beside a current-context that cannot build
 * (its token is refused), so the build works only through `kube-context`.
 */
function agentKubeconfig(): string {
  const config = parse(cluster.kubeconfig({ contextName: AGENT_CONTEXT })) as {
    users: Array<{ name: string; user: { token: string } }>;
    contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
    "current-context": string;
  };
  config.users.push({ name: "someone-else", user: { token: "not-a-valid-token" } });
  config.contexts.push({
    name: "someone-else",
    context: { cluster: config.contexts[0].context.cluster, user: "someone-else" },
  });
  config["current-context"] = "someone-else";
  return stringify(config);
}

const APP = {
  "app/Dockerfile": "FROM busybox\nCOPY app.txt /app/app.txt\n",
  "app/app.txt": "hello from the component\n",
};

function pipeline(inputs: string): string {
  return `include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA
    inputs:
${inputs}

stages: [build, test]

check-digest:
  stage: test
  needs: [build-image]
  script:
    - echo "downstream sees IMAGE_DIGEST=$IMAGE_DIGEST IMAGE_REF=$IMAGE_REF IMAGE_TAGS=$IMAGE_TAGS"
    - test "$IMAGE_DIGEST" = "$EXPECTED_DIGEST"
    - test "$IMAGE_REF" = "registry.example:5000/acme/web@$EXPECTED_DIGEST"
`;
}

function variables(extra: Record<string, string> = {}) {
  return {
    KUBECONFIG: { type: "file", values: { "*": agentKubeconfig() } },
    EXPECTED_DIGEST: DIGEST,
    GITLAB_CI: "true",
    CI_REGISTRY: "registry.example:5000",
    CI_REGISTRY_USER: "gitlab-ci-token",
    CI_REGISTRY_PASSWORD: "job-token-for-the-registry",
    ...extra,
  };
}

function leftovers() {
  return ["jobs", "pods", "secrets"].flatMap((kind) =>
    cluster.objects(kind as "jobs", "ci-builds"),
  );
}

async function waitForEmpty(ms = 5000) {
  const until = Date.now() + ms;
  while (leftovers().length > 0 && Date.now() < until)
    await new Promise((resolve) => setTimeout(resolve, 50));
  return leftovers().length;
}

test("a pipeline includes the component, builds in the cluster, and a later job gets IMAGE_DIGEST from the dotenv report", async () => {
  cluster.useScenario("kaniko-success-cold", { digest: DIGEST });
  const project = makeProject({
    files: APP,
    variables: variables(),
    pipeline: pipeline(`      stage: build
      kube-context: ${AGENT_CONTEXT}
      namespace: ci-builds
      context: app
      tags: registry.example:5000/acme/web:$CI_COMMIT_SHORT_SHA
      labels: |
        team=web
        tier=frontend`),
  });
  const { code, output } = await runGcl(project, ["--ignore-predefined-vars", PREDEFINED], {
    toolsDir: tools,
  });
  expect(output).toMatch(/PASS\s+build-image/);
  expect(output).toMatch(/PASS\s+check-digest/);
  expect(code).toBe(0);

  // The build job: the CLI on Node 24 through the component's KIB_ variables.
  const build = jobOutput(output, "build-image");
  expect(build).toContain(
    "registry: no credentials given; pushing to registry.example:5000 as $CI_REGISTRY_USER with $CI_REGISTRY_PASSWORD",
  );
  expect(build).toContain(`registry.example:5000/acme/web@${DIGEST}`);
  expect(build.filter((line) => line.startsWith("error:"))).toEqual([]);
  // GitLab's section markers: gitlab-ci-local recognises them and prints "<name>_started".
  expect(output).toMatch(/^build-image\s+kib_1_started/m);
  expect(output).not.toContain("job-token-for-the-registry");
  // The report, and the downstream job that read it.
  const report = readFileSync(artifactPath(project, "build-image", "build.env"), "utf8");
  expect(report).toMatch(
    new RegExp(
      `^IMAGE_DIGEST=${DIGEST}\nIMAGE_REF=registry\\.example:5000/acme/web@${DIGEST}\nIMAGE_REUSED=false\nIMAGE_TAGS=registry\\.example:5000/acme/web:[0-9a-f]{8}\n$`,
    ),
  );
  const tags = /^IMAGE_TAGS=(.*)$/m.exec(report)![1];
  expect(jobOutput(output, "check-digest")).toContain(
    `downstream sees IMAGE_DIGEST=${DIGEST} IMAGE_REF=registry.example:5000/acme/web@${DIGEST} IMAGE_TAGS=${tags}`,
  );

  // What reached the cluster: the Job with the component's inputs, its pod given the context, registry
  // credentials in a Secret; nothing left behind.
  const created = cluster.requests.filter(
    (request) =>
      request.method === "POST" && /\/namespaces\/ci-builds\/(jobs|secrets)$/.test(request.path),
  );
  expect(created.map((request) => request.path.split("/").pop()).sort()).toEqual([
    "jobs",
    "secrets",
  ]);
  const [pod] = cluster.podNames("ci-builds");
  expect(cluster.receivedContext(pod)).toBeDefined();
  expect(await waitForEmpty()).toBe(0);
}, 120_000);

test("in a merge-request pipeline with preview: true the component pushes mr-<iid> tags", async () => {
  cluster.resetRequests();
  cluster.useScenario("kaniko-success-cold", { digest: DIGEST });
  const project = makeProject({
    files: APP,
    variables: variables({ CI_MERGE_REQUEST_IID: "7" }),
    pipeline: pipeline(`      kube-context: ${AGENT_CONTEXT}
      namespace: ci-builds
      context: app
      tags: registry.example:5000/acme/web:$CI_COMMIT_SHORT_SHA
      preview: true`),
  });
  const { code, output } = await runGcl(project, ["--ignore-predefined-vars", PREDEFINED], {
    toolsDir: tools,
  });
  expect(code).toBe(0);
  const report = readFileSync(artifactPath(project, "build-image", "build.env"), "utf8");
  expect(report).toMatch(
    /^IMAGE_TAGS=registry\.example:5000\/acme\/web:mr-7,registry\.example:5000\/acme\/web:mr-7-[0-9a-f]{8}$/m,
  );
  expect(jobOutput(output, "build-image")).toContainEqual(
    expect.stringMatching(
      /^preview: merge request !7: pushing registry\.example:5000\/acme\/web:mr-7, /,
    ),
  );
  expect(output).toMatch(/PASS\s+check-digest/);
  expect(await waitForEmpty()).toBe(0);
}, 120_000);

test("a kube-context the agent does not provide fails the job with the available contexts", async () => {
  const project = makeProject({
    files: APP,
    variables: variables(),
    pipeline: pipeline(`      kube-context: acme/infra/agents:missing
      namespace: ci-builds
      context: app
      tags: registry.example:5000/acme/web:1`),
  });
  const { code, output } = await runGcl(project, ["--ignore-predefined-vars", PREDEFINED], {
    toolsDir: tools,
  });
  expect(code).not.toBe(0);
  expect(output).toMatch(/FAIL\s+build-image/);
  const errors = jobOutput(output, "build-image").filter((line) => line.startsWith("error: "));
  expect(errors).toEqual([
    expect.stringContaining(
      `error: kubeconfig: context "acme/infra/agents:missing" not found; available contexts: ${AGENT_CONTEXT}, someone-else`,
    ),
  ]);
}, 120_000);

test("kubeconfig: $VAR of a File variable (its path) builds, without the agent's $KUBECONFIG", async () => {
  cluster.resetRequests();
  cluster.useScenario("kaniko-success-cold", { digest: DIGEST });
  const withoutAgent: Record<string, unknown> = variables();
  delete withoutAgent.KUBECONFIG;
  const project = makeProject({
    files: APP,
    variables: {
      ...withoutAgent,
      CLUSTER_KUBECONFIG: { type: "file", values: { "*": cluster.kubeconfig() } },
    },
    pipeline: pipeline(`      kubeconfig: $CLUSTER_KUBECONFIG
      namespace: ci-builds
      context: app
      tags: registry.example:5000/acme/web:$CI_COMMIT_SHORT_SHA`),
  });
  const { code, output } = await runGcl(project, ["--ignore-predefined-vars", PREDEFINED], {
    toolsDir: tools,
  });
  const build = jobOutput(output, "build-image");
  expect(build.filter((line) => line.startsWith("error:"))).toEqual([]);
  expect(build).toContainEqual(
    expect.stringMatching(
      /^Cluster: https:\/\/127\.0\.0\.1:\d+ \(kubeconfig input \/.+CLUSTER_KUBECONFIG\)$/,
    ),
  );
  expect(output).toMatch(/PASS\s+check-digest/);
  expect(code).toBe(0);
  expect(await waitForEmpty()).toBe(0);
}, 120_000);
