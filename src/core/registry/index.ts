/** OCI distribution API client and the preview-tag cleanup built on it. */
export {
  RegistryClient,
  RegistryError,
  MANIFEST_ACCEPT,
  parseWwwAuthenticate,
  nextLink,
  type AuthChallenge,
  type DeleteOutcome,
  type ManifestRecord,
  type FetchFn,
  type RegistryClientOptions,
  type RegistryCredentials,
} from "./client.js";
export {
  deletePreviewTags,
  type DeletePreviewTagsOptions,
  type DeletedDigest,
  type KeptDigest,
  type PreviewCleanupReport,
} from "./cleanup.js";
export {
  DOCKER_HUB,
  apiHost,
  isInsecureRegistry,
  splitRepository,
  type RepositoryParts,
} from "./reference.js";
export { credentialsForRegistry } from "./credentials.js";
