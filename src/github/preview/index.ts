/** Pull-request preview images for the GitHub face: event plan, sticky comment, cleanup. */
export {
  detectPreviewEvent,
  forkPullRequestMessage,
  forkTargetMessage,
  type DetectPreviewOptions,
  type PreviewEventContext,
  type PreviewPlan,
  type PullRequestInfo,
} from "./event.js";
export {
  formatDuration,
  previewCommentMarker,
  renderPreviewCard,
  renderPreviewComment,
  runUrl,
  upsertPreviewComment,
  type CommentTarget,
  type GitHubClient,
  type PreviewCardInput,
  type UpsertCommentResult,
} from "./comment.js";
export {
  GHCR,
  deleteGhcrPreviewVersions,
  ghcrPackage,
  isGhcr,
  type GhcrCleanupReport,
} from "./ghcr.js";
export {
  cleanupPreviewImages,
  removalCard,
  type CleanupPreviewInput,
  type CleanupPreviewResult,
  type RepositoryCleanup,
} from "./cleanup.js";
