#!/usr/bin/env bash
# Benchmark: cold pull of the nginx test image (debootstrap bookworm + nginx, 2 gzip layers,
# 64 MB compressed, 162 MB unpacked) from the loopback registry: podrun vs rootless podman,
# alternating, same user, same registry. Every timed pull starts from an empty store (the
# untimed prepare step removes all images).
#
# Two setups, because this machine's root filesystem is ext4 *without a journal*: there, ext4
# will not reuse an inode freed less than 5 s ago (305 s while its inode-table block is dirty)
# and scans past each one, so creating files right after deleting thousands of them costs
# seconds of kernel time, whoever does it.
#   tmpfs: both stores on one tmpfs, isolating the tools' own work;
#   disk:  the stores in the user's home, with `sync; sleep 6` after each removal.
# Usage (root): bash scripts/bench/pull.sh [RUNS]   (after scripts/demo.sh or scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
runs=${1:-5}

bash scripts/test-registry.sh start >/dev/null
eval "$(bash scripts/test-registry.sh env)"
cargo build --release -q -p podrun
install -m 0755 target/release/podrun /usr/local/bin/podrun
image="$PODRUN_TEST_REGISTRY/library/nginx:1.23"

echo "== tmpfs: cold pull of $image ($(date -u +%Y-%m-%d), $(nproc) cores)"
benchfs=/mnt/podrun-bench
mkdir -p "$benchfs"
mountpoint -q "$benchfs" || mount -t tmpfs -o size=4g,mode=0755 tmpfs "$benchfs"
mkdir -p "$benchfs/podrun" "$benchfs/podman"
chown "$BENCH_USER:" "$benchfs/podrun" "$benchfs/podman"
setup_podman "$PODRUN_TEST_REGISTRY" "$benchfs/podman/storage"
# podman's rootless pause process (catatonit) holds a mount namespace from before this
# mount; end it so podman makes a new one that sees the tmpfs.
pkill -u "$BENCH_USER" -x catatonit || true
BENCH_DATA_HOME="$benchfs/podrun" alternate "$runs" \
  "podrun pull" "podrun rmi -a" "podrun pull -q $image" \
  "podman pull" "podman rmi -af" "podman pull -q $image"
as_bench_user "podman rmi -af" >/dev/null 2>&1 || true
umount "$benchfs"
pkill -u "$BENCH_USER" -x catatonit || true

echo "== disk (ext4, no journal): cold pull, sync + 6 s pause after each removal"
setup_podman "$PODRUN_TEST_REGISTRY"
alternate "$runs" \
  "podrun pull" "podrun rmi -a; sync; sleep 6" "podrun pull -q $image" \
  "podman pull" "podman rmi -af; sync; sleep 6" "podman pull -q $image"
