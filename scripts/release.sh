#!/usr/bin/env bash
# Release steps of .github/workflows/release.yml, in a checkout whose origin is the repository:
#   release.sh check vX.Y.Z       the tag is a release tag and package.json's version is X.Y.Z
#   release.sh move-major vX.Y.Z  point vX at the release and push it (force: it moves), as the
#                                 actions/* repositories do, so `uses: …@vX` gets the release
set -euo pipefail
cd "$(dirname "$0")/.."

command="${1:-}"
tag="${2:-}"
if [[ ! "$tag" =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
  echo "release: \"$tag\" is not a release tag; push a tag vX.Y.Z (e.g. v1.2.3)" >&2
  exit 1
fi
major="v${BASH_REMATCH[1]}"
version="${tag#v}"

case "$command" in
  check)
    package_version="$(node -p 'JSON.parse(require("fs").readFileSync("package.json", "utf8")).version')"
    if [ "$package_version" != "$version" ]; then
      echo "release: tag $tag does not match package.json's version $package_version; set \"version\": \"$version\" (npm version $version --no-git-tag-version) and tag that commit" >&2
      exit 1
    fi
    echo "release: $tag is package.json's version"
    ;;
  move-major)
    commit="$(git rev-parse "refs/tags/$tag^{commit}")"
    git tag -f "$major" "$commit" >/dev/null
    git push -f origin "refs/tags/$major"
    echo "release: $major now points at $tag ($commit)"
    ;;
  *)
    echo "usage: release.sh check|move-major vX.Y.Z" >&2
    exit 2
    ;;
esac
