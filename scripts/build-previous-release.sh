#!/usr/bin/env bash
# Builds the podrun binary of the previous release (the pinned commit PREVIOUS) once, for the
# end-to-end upgrade test (tests/e2e/tests/upgrade.rs: a pod started by that release is
# listed, described and taken down by the current one), and caches it as
# $PODRUN_TEST_CACHE/previous/podrun-<short commit> (/var/cache/podrun-test by default).
# Prints the binary's path on stdout; a later run finds it there and builds nothing.
#
# The release is built from `git archive PREVIOUS` in a temporary directory, with this
# repository's target/ as target dir, so that it reuses the crates.io dependencies the main
# build compiled. Its own crates are built with `incremental = false`: that is part of
# cargo's unit hash, so they never share (and overwrite) the current tree's artifacts, which
# have the same package names and relative paths. The binary cargo leaves in
# target/debug/podrun is removed; the next `cargo build -p podrun` links the current one
# again, so run this before the main build (scripts/test.sh does).
#
# A clone without the commit (a shallow clone) gets a warning and exit 0 with no binary and
# nothing printed on stdout: scripts/test.sh then skips the upgrade test and says so loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

# The last released state (`git rev-parse df2f761`).
PREVIOUS=${PODRUN_PREVIOUS_COMMIT:-df2f7611a2a4451c9b660c5c61d311ac9b2a5813}
short=${PREVIOUS:0:7}

cache=${PODRUN_TEST_CACHE:-/var/cache/podrun-test}/previous
binary=$cache/podrun-$short
if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

if ! git cat-file -e "$PREVIOUS^{commit}" 2>/dev/null; then
  {
    echo "build-previous-release: WARNING: commit $PREVIOUS (the previous release) is not in"
    echo "build-previous-release: this clone (a shallow clone?), so its binary cannot be built and the"
    echo "build-previous-release: upgrade test cannot run. Fetch it with"
    echo "build-previous-release:   git fetch --unshallow   (or: git fetch origin $PREVIOUS)"
    echo "build-previous-release: or put its binary at $binary."
  } >&2
  exit 0
fi

mkdir -p "$cache"
# One build at a time: a second caller waits, then finds the binary.
exec 9>"$cache/.lock"
flock 9
if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

repo=$PWD
objects=$(cd "$(git rev-parse --git-common-dir)" && pwd)/objects
tmp=$(mktemp -d /tmp/podrun-previous.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
git archive --format=tar "$PREVIOUS" | tar -x -C "$tmp"
# A git directory whose HEAD is the commit (objects borrowed from this clone), so that the
# binary's build script embeds it and `podrun --version` names it.
git init -q "$tmp"
echo "$objects" >"$tmp/.git/objects/info/alternates"
git -C "$tmp" update-ref --no-deref HEAD "$PREVIOUS"

# The release's own packages, each built without incremental compilation (see above).
overrides=()
for package in $(cargo metadata --no-deps --format-version 1 --manifest-path "$tmp/Cargo.toml" |
  python3 -c 'import json, sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))'); do
  overrides+=(--config "profile.dev.package.$package.incremental=false")
done

echo "build-previous-release: building podrun $short (once; cached as $binary)" >&2
cargo build -p podrun --locked --manifest-path "$tmp/Cargo.toml" --target-dir "$repo/target" \
  "${overrides[@]}" >&2
cp "$repo/target/debug/podrun" "$binary.tmp"
rm -f "$repo/target/debug/podrun"
if ! "$binary.tmp" --version | grep -q "(commit $short"; then
  echo "build-previous-release: the binary built does not name commit $short:" >&2
  "$binary.tmp" --version >&2 || true
  rm -f "$binary.tmp"
  exit 1
fi
mv "$binary.tmp" "$binary"
echo "$binary"
