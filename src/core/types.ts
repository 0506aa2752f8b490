/**
 * The shapes every part of the engine agrees on. Parsing lives in spec.ts, rendering in
 * manifests.ts and builders/, the run in build.ts.
 */

export type BuilderName = "kaniko" | "buildkit" | "buildah" | "dind";

/**
 * Proxy variables as the environment gives them (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, or their
 * lower-case forms); the adapters read them, proxy.ts decides per URL.
 */
export interface ProxySettings {
  httpsProxy?: string;
  httpProxy?: string;
  noProxy?: string;
}

/** Where the cluster connection comes from. Adapters fill it; cluster.ts applies the precedence. */
export interface ClusterSource {
  /** Kubeconfig content given as an input (already decoded from base64 when it was). */
  kubeconfigContent?: string;
  /** The file kubeconfigContent was read from, when the input named a file (relative paths in it resolve from there). */
  kubeconfigFile?: string;
  /** Kubeconfig files to merge when no content is given ($KUBECONFIG entries, else ~/.kube/config). */
  kubeconfigPaths: string[];
  /** In-cluster service account, when the adapter runs in a pod (KUBERNETES_SERVICE_HOST/PORT). */
  inCluster?: { host: string; port: string; serviceAccountDir: string };
  /** Context to select; default: the kubeconfig's current-context. */
  context?: string;
  /** Proxy variables; the kubeconfig's own proxy-url wins over them, as in kubectl. */
  proxy?: ProxySettings;
}

/** The build context: a local directory uploaded into the pod, or a git URL the builder fetches. */
export type ContextSource = { kind: "dir"; dir: string } | { kind: "git"; url: string };

export interface KeyValue {
  key: string;
  value: string;
}

export interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal";
  value?: string;
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  tolerationSeconds?: number;
}

export interface ResourceRequirements {
  requests: Record<string, string>;
  limits: Record<string, string>;
}

/** Registry credentials, rendered into one kubernetes.io/dockerconfigjson Secret. */
export type RegistryAuth =
  | { kind: "basic"; username: string; password: string; registries: string[] }
  | { kind: "docker-config-json"; json: string };

/** A build secret (BuildKit `--secret id=…`): value bytes never appear in args or logs. */
export interface BuildSecret {
  id: string;
  value: Buffer;
}

/** One validated build request. Produced only by parseBuildSpec(); everything else trusts it. */
export interface BuildSpec {
  context: ContextSource;
  /** Dockerfile path relative to the context directory (POSIX separators). */
  dockerfile: string;
  /** At least one; full references as given (validated). */
  tags: string[];
  buildArgs: KeyValue[];
  labels: KeyValue[];
  target?: string;
  push: boolean;
  cacheRepo?: string;
  /** Kaniko's and Buildah's --cache-ttl, as a Go duration string ("168h"). */
  cacheTtl?: string;
  /** Target platforms (os/arch[/variant]); builders that cannot build them say so. */
  platforms: string[];
  cacheFrom: string[];
  cacheTo: string[];
  secrets: BuildSecret[];

  cluster: ClusterSource;
  /** Unset: the kubeconfig context's namespace, else "default" (as kubectl does). */
  namespace?: string;
  serviceAccount?: string;

  builder: BuilderName;
  builderImage: string;
  contextImage: string;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  resources: ResourceRequirements;
  timeoutSeconds: number;
  /** How long the pod may take to be scheduled and start (≤ timeoutSeconds). */
  scheduleTimeoutSeconds: number;
  ttlSeconds: number;
  keepJob: boolean;

  /**
   * Reuse an image built earlier from the same build key (recorded in the cache repository)
   * instead of building; true only with a cache repository and push.
   */
  reuse: boolean;

  registryAuth?: RegistryAuth;
  insecureRegistries: string[];
  /** The user's consent to a builder that runs a privileged container (builder: dind). */
  allowPrivileged: boolean;
  dryRun: boolean;
}

/** Identifies one build in the cluster: names and labels derived from it. */
export interface BuildIdentity {
  /** Job name (also the prefix of the Secrets' names). */
  jobName: string;
  /** CI run identifier (GitHub run id + attempt, GitLab job id, or "local"). */
  runId: string;
  /** Random per build. */
  buildId: string;
}

export interface PhaseDurations {
  submitMs: number;
  scheduleMs: number;
  uploadMs: number;
  buildMs: number;
  totalMs: number;
}

export interface BuildResult {
  digest: string;
  /** `<first tag's repository>@<digest>` */
  image: string;
  tags: string[];
  builder: BuilderName;
  namespace: string;
  job: string;
  context: { files: number; bytes: number };
  durations: PhaseDurations;
  /** True when no Job ran: the tags were pointed at an image built earlier from the same build key. */
  reused: boolean;
  /** When the image was built (ISO 8601): now for a build; for a reused image, its config's created time. */
  builtAt?: string;
  /** The build key (sha256 hex) when reuse is on. */
  buildKey?: string;
}
