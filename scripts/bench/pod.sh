#!/usr/bin/env bash
# Benchmark: `podrun play` (until every container runs) and `podrun down`, against rootless
# `podman kube play` and `podman kube down`, on the same manifest: a 2-container busybox pod
# sharing an emptyDir. Images are pulled beforehand (imagePullPolicy IfNotPresent), so only
# pod start and stop are timed. Alternating runs, same user, same registry.
# Usage (root): bash scripts/bench/pod.sh [RUNS]   (after scripts/demo.sh or scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
runs=${1:-5}

bash scripts/test-registry.sh start >/dev/null
eval "$(bash scripts/test-registry.sh env)"
setup_podman "$PODRUN_TEST_REGISTRY"
pkill -u "$BENCH_USER" -x catatonit || true
cargo build --release -q -p podrun
install -m 0755 target/release/podrun /usr/local/bin/podrun

image="$PODRUN_TEST_REGISTRY/library/busybox:latest"
manifest="$BENCH_HOME/bench-pod.yaml"
# The containers leave promptly on SIGTERM (`wait` is interrupted by the trap), so `down`
# measures the tools, not a grace period.
cat > "$manifest" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: bench
spec:
  containers:
  - name: a
    image: $image
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait \$!; done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: b
    image: $image
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait \$!; done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes:
  - name: shared
    emptyDir: {}
YAML
chown "$BENCH_USER:" "$manifest"
as_bench_user "podrun pull -q $image && podman pull -q $image" >/dev/null

echo "== play: 2-container busybox pod with an emptyDir ($(date -u +%Y-%m-%d), $(nproc) cores)"
alternate "$runs" \
  "podrun play" "podrun down bench" "podrun play $manifest" \
  "podman kube play" "podman kube down $manifest" "podman kube play $manifest"
echo "== down: the same pod"
alternate "$runs" \
  "podrun down" "podrun play $manifest" "podrun down bench" \
  "podman kube down" "podman kube play $manifest" "podman kube down $manifest"
as_bench_user "podrun down bench; podman kube down $manifest" >/dev/null 2>&1 || true
