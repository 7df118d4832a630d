#!/usr/bin/env bash
# Benchmark: `podrun play` (until every container runs), `podrun down` and `podrun down
# --grace-period 0`, against rootless `podman kube play` and `podman kube down`, on the same
# manifests: a 2-container busybox pod sharing an emptyDir, and the seed pod-network pod
# (examples/pod-network.yaml); and `down --grace-period 0` of a 2-container busybox pod whose
# shells ignore SIGTERM (issue 18: a plain `down` waits out its 30 s grace period, `podman kube
# down` kills it at once). Images are pulled beforehand (imagePullPolicy IfNotPresent), so only
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

# The seed pod-network pod (nginx + a busybox collector sharing an emptyDir), with the test
# registry's full image names so that podman finds them too, and without its `ports:` (podman
# kube play publishes every containerPort on the host, and port 80 is privileged).
nginx_manifest="$BENCH_HOME/bench-pod-network.yaml"
sed -e "s|image: nginx:1.23|image: $PODRUN_TEST_REGISTRY/library/nginx:1.23\n    imagePullPolicy: IfNotPresent|" \
    -e "s|image: busybox\$|image: $image\n    imagePullPolicy: IfNotPresent|" \
    -e '/^    ports:$/d' -e '/^    - containerPort: 80$/d' \
    examples/pod-network.yaml > "$nginx_manifest"
chown "$BENCH_USER:" "$nginx_manifest"
as_bench_user "podrun pull -q $PODRUN_TEST_REGISTRY/library/nginx:1.23 && podman pull -q $PODRUN_TEST_REGISTRY/library/nginx:1.23" >/dev/null

# bench_pod TITLE MANIFEST POD: play and down, each against podman's, alternating.
bench_pod() {
  local title=$1 file=$2 pod=$3
  # A pod left by an interrupted run would make every play fail.
  clear_pod "$pod" "$file"
  echo "== play: $title ($(date -u +%Y-%m-%d), $(nproc) cores)"
  alternate "$runs" \
    "podrun play" "podrun down $pod" "podrun play $file" \
    "podman kube play" "podman kube down $file" "podman kube play $file"
  echo "== down: $title"
  alternate "$runs" \
    "podrun down" "podrun play $file" "podrun down $pod" \
    "podman kube down" "podman kube play $file" "podman kube down $file"
  bench_down_now "$title" "$file" "$pod"
}

# clear_pod POD MANIFEST: neither tool has the pod (an interrupted run may have left it).
clear_pod() {
  as_bench_user "podrun down --grace-period 0 $1; podman kube down $2" >/dev/null 2>&1 || true
}

# bench_down_now TITLE MANIFEST POD: `down --grace-period 0` against `podman kube down`.
bench_down_now() {
  local title=$1 file=$2 pod=$3
  clear_pod "$pod" "$file"
  echo "== down --grace-period 0: $title"
  alternate "$runs" \
    "podrun down --grace-period 0" "podrun play $file" "podrun down --grace-period 0 $pod" \
    "podman kube down" "podman kube play $file" "podman kube down $file"
  clear_pod "$pod" "$file"
}

# The issue's pod: shells that ignore SIGTERM, as a pid-1 shell without a handler does.
stubborn_manifest="$BENCH_HOME/bench-stubborn.yaml"
sed -e 's/name: bench$/name: stubborn/' -e "s/trap 'exit 0' TERM/trap '' TERM/" \
  "$manifest" > "$stubborn_manifest"
chown "$BENCH_USER:" "$stubborn_manifest"

# bench_play TITLE MANIFEST POD: play alone, against podman's.
bench_play() {
  local title=$1 file=$2 pod=$3
  clear_pod "$pod" "$file"
  echo "== play: $title"
  alternate "$runs" \
    "podrun play" "podrun down --grace-period 0 $pod" "podrun play $file" \
    "podman kube play" "podman kube down $file" "podman kube play $file"
  clear_pod "$pod" "$file"
}

# The issue's :latest case: imagePullPolicy Always (the default for :latest), so both tools
# ask the registry on every play; the image has not changed, so neither downloads a layer.
latest_manifest="$BENCH_HOME/bench-latest.yaml"
sed -e 's/name: bench$/name: latest/' -e 's/imagePullPolicy: IfNotPresent/imagePullPolicy: Always/' \
  "$manifest" > "$latest_manifest"
chown "$BENCH_USER:" "$latest_manifest"

bench_pod "2-container busybox pod with an emptyDir" "$manifest" bench
bench_play "2-container busybox pod, busybox:latest with imagePullPolicy Always" "$latest_manifest" latest
bench_down_now "2-container busybox pod with an emptyDir, SIGTERM ignored" "$stubborn_manifest" stubborn
bench_pod "seed pod-network pod (nginx:1.23 + busybox collector, emptyDir)" "$nginx_manifest" pod-network
