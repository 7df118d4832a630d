#!/usr/bin/env bash
# Benchmark: cold pull of the nginx test image (debootstrap bookworm + nginx, 2 gzip layers)
# from the loopback registry, podrun vs rootless podman, alternating, same user, same registry.
# Each timed pull starts from an empty store (the untimed prepare step removes every image).
# Usage (root): bash scripts/bench/pull.sh [RUNS]   (after scripts/demo.sh or scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
runs=${1:-5}

bash scripts/test-registry.sh start >/dev/null
eval "$(bash scripts/test-registry.sh env)"
setup_podman "$PODRUN_TEST_REGISTRY"
cargo build --release -q -p podrun
install -m 0755 target/release/podrun /usr/local/bin/podrun

image="$PODRUN_TEST_REGISTRY/library/nginx:1.23"
echo "cold pull of $image ($(date -u +%Y-%m-%d), $(nproc) cores)"
alternate "$runs" \
  "podrun pull" "podrun rmi -a" "podrun pull -q $image" \
  "podman pull" "podman rmi -af" "podman pull -q $image"
