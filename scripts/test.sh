#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is missing, builds the
# test images once (cached in /var/cache/podrun-test), starts the loopback registries, then
# runs the unit tests and the end-to-end tests (the real binary, run as the ordinary user
# `podrun-test`). Run as root: it creates the user and starts the registries.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: run as root (it creates the test user and the test registries)" >&2
  exit 1
fi

bash scripts/install-deps.sh
bash scripts/create-test-user.sh >/dev/null
bash scripts/build-test-images.sh
bash scripts/test-registry.sh start
# Stop the registries when the suite ends, so no daemon outlives the run (or holds CI's output).
trap 'bash scripts/test-registry.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(bash scripts/test-registry.sh env)"
export PODRUN_TEST_REGISTRY PODRUN_TEST_AUTH_REGISTRY PODRUN_TEST_AUTH_USER \
  PODRUN_TEST_AUTH_PASSWORD PODRUN_TEST_FAULT_REGISTRY
export PODRUN_TEST_IMAGES=/var/cache/podrun-test/images.json
export PODRUN_TEST_USER=podrun-test

cargo fmt --all -- --check
# Issue 16's structure rules: files within 800 lines, no module cycle of more than three.
python3 scripts/checks/structure.py
cargo clippy --workspace --all-targets -- -D warnings
# The previous release's binary, for the upgrade test (built once, then cached). Before the
# main build: building it removes target/debug/podrun, which the main build links again.
# A failed build of the old release skips the upgrade test (loudly) instead of the suite.
previous=$(bash scripts/build-previous-release.sh) || previous=""
if [ -n "$previous" ]; then
  export PODRUN_PREVIOUS_BIN="$previous"
else
  echo "scripts/test.sh: WARNING: ******** no previous release binary: the upgrade test" >&2
  echo "scripts/test.sh: WARNING: ******** (tests/e2e/tests/upgrade.rs) is SKIPPED in this run" >&2
  export PODRUN_SKIP_PREVIOUS=1
fi
cargo build -p podrun
export PODRUN_BIN="$PWD/target/debug/podrun"

# cargo ends with per-crate lines (the last one often a doc-test run of 0 tests); finish with
# one summary line over every crate, in the plain `N passed, N failed` form.
log=$(mktemp)
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
read -r passed failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$log")
rm -f "$log"
echo "podrun test suite: $passed passed, $failed failed"
if [ "${PODRUN_SKIP_PREVIOUS:-}" = 1 ]; then
  echo "podrun test suite: WARNING: the upgrade test was SKIPPED (no previous release binary;" \
    "see scripts/build-previous-release.sh)" >&2
fi
exit "$status"
