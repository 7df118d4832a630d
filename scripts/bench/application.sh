#!/usr/bin/env bash
# Benchmark: an application's time to ready on the shared network (issue 17). The file is the
# e2e test's application (tests/e2e/tests/applications.rs, `app()`): a Deployment `api` of 2
# busybox httpd replicas (a named container port `http`, an exec readiness probe every
# second) behind a Service whose targetPort is that name, a StatefulSet `db` of one such pod
# behind a headless Service, and a client Pod (nginx:1.23 image running `sleep 3600`); full
# test-registry image names, imagePullPolicy IfNotPresent, images pulled beforehand.
#
#   podrun  `podrun play --wait-ready app.yaml` (a file with Services runs on the user's shared
#           network: one network holder and one slirp4netns for every pod); also plain
#           `podrun play` (returns when every container runs, readiness not awaited).
#   podman  `podman kube play` of the same pods, then polling `podman ps -a` until every
#           container (the infra containers too) is running. podman 4.3 ignores Services and
#           StatefulSets and publishes every containerPort on the host (the second api replica
#           then fails: port 8080 taken), so its file is the same with the StatefulSet as a
#           Deployment of one replica and the containers' `ports:` dropped: 4 pods each side.
#           podman 4.3 does not run readiness probes, so its "ready" is "running".
#
# Series (alternating, one warm-up each, RUNS pairs; scripts/bench/lib.sh's `alternate`):
#   1. podrun play --wait-ready  vs  podman kube play + wait   (podrun's holder warm: the
#      untimed prepare step is `down`, and the holder lingers 10 s after the last pod)
#   2. podrun play (no --wait-ready)  vs  the same podman
#   3. podrun down FILE  vs  podman kube down FILE (the pods' main processes ignore SIGTERM,
#      as a pid-1 httpd or sleep does: podrun waits out terminationGracePeriodSeconds 1 s)
#   4. podrun down --grace-period 0 FILE  vs  podman kube down FILE
#   5. podrun play --wait-ready with a cold holder (prepare: down, then wait until the holder
#      has ended)  vs  with a warm one (prepare: down)
#
# Usage (root): bash scripts/bench/application.sh [RUNS]   (default 7)
#   PODRUN_BIN=/path/podrun   the podrun to measure (default: target/release/podrun, built if
#                             older than the sources)
#   SERIES="1 2 3 4 5"        which series
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
runs=${1:-7}
series=${SERIES:-1 2 3 4 5}

bash scripts/test-registry.sh start >/dev/null
eval "$(bash scripts/test-registry.sh env)"
setup_podman "$PODRUN_TEST_REGISTRY"
pkill -u "$BENCH_USER" -x catatonit || true

if [ -z "${PODRUN_BIN:-}" ]; then
  PODRUN_BIN=target/release/podrun
  if [ ! -x "$PODRUN_BIN" ] || [ -n "$(find cli crates Cargo.toml Cargo.lock -newer "$PODRUN_BIN" \
    \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock -o -name build.rs \) -print -quit)" ]; then
    cargo build --release -q -p podrun
  fi
fi
# A directory of its own (the supervisor and the holder run /proc/self/exe).
bin=/usr/local/lib/podrun-bench-application/podrun
install -d "$(dirname "$bin")"
install -m 0755 "$PODRUN_BIN" "$bin"

work=$(mktemp -d /tmp/podrun-bench-application.XXXXXX)
chmod 0755 "$work"
busybox="$PODRUN_TEST_REGISTRY/library/busybox:latest"
nginx="$PODRUN_TEST_REGISTRY/library/nginx:1.23"

# The e2e test's web_template: a busybox httpd on 8080 (named http), ready while /tmp/ready
# exists.
web() {
  cat <<YAML
    metadata:
      labels:
        app: $1
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
        ports:
        - name: http
          containerPort: 8080
        readinessProbe:
          exec:
            command: ["test", "-f", "/tmp/ready"]
          periodSeconds: 1
          failureThreshold: 1
YAML
}
app=$work/app.yaml
cat >"$app" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  selector:
    matchLabels:
      app: api
  template:
$(web api)
---
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector:
    app: api
  ports:
  - port: 80
    targetPort: http
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels:
      app: db
  template:
$(web db)
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector:
    app: db
  ports:
  - port: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $nginx
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
YAML
# podman's: the StatefulSet as a Deployment (podman 4.3 skips StatefulSets), no `ports:`.
podman_app=$work/app-podman.yaml
sed -e '/^        ports:$/,/^          containerPort: 8080$/d' -e 's/^kind: StatefulSet$/kind: Deployment/' \
  -e '/^  serviceName: db$/d' "$app" >"$podman_app"

# podman kube play, then until every container of the user is running (podman 4.3's
# {{.State}} is the same text as {{.Status}}: "Up 2 seconds ago").
cat >"$work/podman-up.sh" <<SH
podman kube play $podman_app >/dev/null || exit 1
while podman ps -a --format '{{.Status}}' | grep -qv '^Up '; do sleep 0.05; done
SH
# Until the user's network holder has ended (it lingers 10 s after the last pod).
cat >"$work/holder-gone.sh" <<SH
json=/run/user/$BENCH_UID/podrun/network/holder.json
for _ in \$(seq 300); do
  pid=\$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["holder"]["pid"])' "\$json" 2>/dev/null) || exit 0
  kill -0 "\$pid" 2>/dev/null || exit 0
  sleep 0.1
done
echo "the network holder did not end" >&2; exit 1
SH
chmod 0644 "$work"/*
chown -R "$BENCH_USER:" "$work"
as_bench_user "$bin pull -q $busybox && $bin pull -q $nginx && podman pull -q $busybox && podman pull -q $nginx" >/dev/null

podrun_down="$bin down --grace-period 0 $app"
podman_down="podman kube down $podman_app"
clear_all() { as_bench_user "$podrun_down; $podman_down" >/dev/null 2>&1 || true; }
trap 'clear_all; rm -rf "$work"' EXIT
clear_all

# A check before timing: podrun's play leaves the 4 pods ready, podman's the 4 pods running.
as_bench_user "$bin play --wait-ready --timeout 60s $app >/dev/null && $bin ps && bash $work/podman-up.sh && podman pod ps"
clear_all

echo "== application (issue 17): $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(podman --version); $("$bin" --version | head -1)"
for s in $series; do
  case $s in
    1)
      echo "== 1. play --wait-ready (holder warm) vs podman kube play + until running"
      alternate "$runs" \
        "podrun play --wait-ready" "$podrun_down" "$bin play --wait-ready --timeout 60s $app" \
        "podman kube play + wait" "$podman_down" "bash $work/podman-up.sh" ;;
    2)
      echo "== 2. play (containers running, holder warm) vs podman kube play + until running"
      alternate "$runs" \
        "podrun play" "$podrun_down" "$bin play $app" \
        "podman kube play + wait" "$podman_down" "bash $work/podman-up.sh" ;;
    3)
      echo "== 3. down FILE (grace period 1 s) vs podman kube down"
      alternate "$runs" \
        "podrun down" "$podrun_down; $bin play --wait-ready --timeout 60s $app" "$bin down $app" \
        "podman kube down" "$podman_down; bash $work/podman-up.sh" "$podman_down" ;;
    4)
      echo "== 4. down --grace-period 0 FILE vs podman kube down"
      alternate "$runs" \
        "podrun down --grace-period 0" "$podrun_down; $bin play --wait-ready --timeout 60s $app" "$podrun_down" \
        "podman kube down" "$podman_down; bash $work/podman-up.sh" "$podman_down" ;;
    5)
      echo "== 5. play --wait-ready: cold holder (none running) vs warm (lingering)"
      alternate "$runs" \
        "podrun play, holder cold" "$podrun_down; bash $work/holder-gone.sh" "$bin play --wait-ready --timeout 60s $app" \
        "podrun play, holder warm" "$podrun_down" "$bin play --wait-ready --timeout 60s $app" ;;
  esac
  clear_all
done
