#!/usr/bin/env bash
# Builds the test images (busybox, nginx from debootstrap, and the special cases: shared base
# layer, multi-platform index, zstd, Docker schema 2, corrupt) and pushes them into the
# registry storage cached under /var/cache/podrun-test, which scripts/test-registry.sh serves.
# The work is in scripts/testimages.py; a run whose stamp matches the recipe only prints the
# summary (seconds). Options: --force (rebuild and push again), --force-base (also run
# debootstrap again). Run as root: debootstrap and the layers' file owners need it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "build-test-images: run as root" >&2
  exit 1
fi

for tool in docker-registry debootstrap zstd tar chroot flock; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-test-images: $tool is missing: run scripts/install-deps.sh" >&2
    exit 1
  fi
done

# Debian's python3 (stdlib only) rather than whatever python3 comes first in PATH.
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)

cache=${PODRUN_TEST_CACHE:-/var/cache/podrun-test}
mkdir -p "$cache"
# One build at a time: a second caller waits, then finds the stamp and returns at once.
exec flock "$cache/.lock" "$python" scripts/testimages.py build "$@"
