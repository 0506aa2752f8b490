/** Webhook payloads shaped like GitHub's (trimmed to the fields the preview code and a reader need). */

const BASE_REPO = {
  id: 1296269,
  name: "web",
  full_name: "acme/web",
  private: false,
  fork: false,
  owner: { login: "acme", type: "Organization" },
  html_url: "https://github.com/acme/web",
};

const FORK_REPO = {
  id: 9999001,
  name: "web",
  full_name: "mallory/web",
  private: false,
  fork: true,
  owner: { login: "mallory", type: "User" },
  html_url: "https://github.com/mallory/web",
};

export const HEAD_SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
export const MERGE_SHA = "e5bd3914e2e596debea16f433f57875b5b90bcd6";

function pullRequestPayload(
  action: string,
  headRepo: object | null,
  extra: Record<string, unknown> = {},
) {
  return {
    action,
    number: 12,
    pull_request: {
      url: "https://api.github.com/repos/acme/web/pulls/12",
      html_url: "https://github.com/acme/web/pull/12",
      number: 12,
      state: action === "closed" ? "closed" : "open",
      title: "Add preview images",
      user: { login: headRepo === BASE_REPO ? "octocat" : "mallory", type: "User" },
      merge_commit_sha: MERGE_SHA,
      merged: false,
      head: { label: "octocat:feature", ref: "feature", sha: HEAD_SHA, repo: headRepo },
      base: {
        label: "acme:main",
        ref: "main",
        sha: "9049f1265b7d61be4a8904a9a27120d2064dab3b",
        repo: BASE_REPO,
      },
      ...extra,
    },
    repository: BASE_REPO,
    organization: { login: "acme" },
    sender: { login: "octocat", type: "User" },
  };
}

export function ctx(eventName: string, payload: Record<string, unknown>) {
  return { eventName, payload, serverUrl: "https://github.com" };
}

export const sameRepoOpened = ctx("pull_request", pullRequestPayload("opened", BASE_REPO));
export const sameRepoSynchronize = ctx("pull_request", {
  ...pullRequestPayload("synchronize", BASE_REPO),
  before: "0000000000000000000000000000000000000001",
  after: HEAD_SHA,
});
export const sameRepoClosed = ctx(
  "pull_request",
  pullRequestPayload("closed", BASE_REPO, { merged: true }),
);
export const forkOpened = ctx("pull_request", pullRequestPayload("opened", FORK_REPO));
export const forkClosed = ctx("pull_request", pullRequestPayload("closed", FORK_REPO));
export const forkTargetOpened = ctx("pull_request_target", pullRequestPayload("opened", FORK_REPO));
export const forkTargetClosed = ctx("pull_request_target", pullRequestPayload("closed", FORK_REPO));
export const sameRepoTargetOpened = ctx(
  "pull_request_target",
  pullRequestPayload("reopened", BASE_REPO),
);
export const deletedForkOpened = ctx("pull_request", pullRequestPayload("synchronize", null));
export const pushEvent = ctx("push", {
  ref: "refs/heads/main",
  before: "9049f1265b7d61be4a8904a9a27120d2064dab3b",
  after: HEAD_SHA,
  repository: BASE_REPO,
  pusher: { name: "octocat" },
  sender: { login: "octocat", type: "User" },
  head_commit: { id: HEAD_SHA, message: "Merge pull request #12" },
});

/** The same-repo PR's synchronize event after a push of `sha`. */
export function synchronizeWithHead(sha: string) {
  return ctx("pull_request", {
    ...pullRequestPayload("synchronize", BASE_REPO),
    pull_request: {
      ...pullRequestPayload("synchronize", BASE_REPO).pull_request,
      head: { label: "octocat:feature", ref: "feature", sha, repo: BASE_REPO },
    },
    after: sha,
  });
}
