#!/usr/bin/env bash
# Soak: CYCLES play/down cycles of a 2-container pod (busybox, an emptyDir, slirp4netns, a
# readiness probe), as an ordinary user (podrun-soak, made here), with the release binary. Reports the time
# of each cycle (first, median, last, slowest) and, before and after the run, what podrun
# could leak: the user's processes, mounts under the user's dirs, open descriptors of
# podrun processes, files under podrun's runtime and data directories, and the store's
# size. Each "after" must equal its "before"; the script exits 1 otherwise.
# Not a test (it takes minutes); results go into docs/benchmarks.md.
# Usage (root): bash scripts/soak.sh [CYCLES]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-200}
# A user of its own, so that nothing else (tests, benchmarks) counts in its processes.
user=${SOAK_USER:-podrun-soak}
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$user"
  sed -i "/^$user:/d" /etc/subuid /etc/subgid
  echo "$user:400000:65536" >>/etc/subuid
  echo "$user:400000:65536" >>/etc/subgid
fi

bash scripts/install-deps.sh >/dev/null
bash scripts/create-test-user.sh >/dev/null   # also makes /dev/net/tun usable (0666)
bash scripts/build-test-images.sh >/dev/null
bash scripts/test-registry.sh start >/dev/null
eval "$(bash scripts/test-registry.sh env)"
cargo build --release -q -p podrun
bin=$(mktemp -d /tmp/podrun-soak-bin.XXXXXX)
install -m 0755 target/release/podrun "$bin/podrun"
chmod 0755 "$bin"

# A private environment: home, runtime and data directories of this run only.
root=$(mktemp -d /tmp/podrun-soak.XXXXXX)
mkdir -p "$root/home/.config/podrun" "$root/run" "$root/data"
chmod 0700 "$root/run"
chmod 0755 "$root"
cat >"$root/home/.config/podrun/config.toml" <<EOF
[registries."docker.io"]
mirrors = ["http://$PODRUN_TEST_REGISTRY"]
EOF
cat >"$root/home/soak.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: soak
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: client
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do wget -q -O /shared/page http://127.0.0.1:8080/; sleep 1 & wait $!; done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes:
  - name: shared
    emptyDir: {}
EOF
chown -R "$user:" "$root"
cleanup() {
  as_user "podrun down soak" >/dev/null 2>&1 || true
  rm -rf "$root" "$bin"
}
trap cleanup EXIT

as_user() {
  runuser -u "$user" -- env -i HOME="$root/home" USER="$user" LANG=C.UTF-8 \
    PATH="$bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
    XDG_RUNTIME_DIR="$root/run" XDG_DATA_HOME="$root/data" bash -c "cd $root/home && $1"
}

uid=$(id -u "$user")
# What podrun could leak, one "name=count" per line.
census() {
  local podrun_pids fds=0 pid
  podrun_pids=$(pgrep -u "$uid" -f "$bin/podrun|__supervise|podrun-watchdog" || true)
  for pid in $podrun_pids; do
    fds=$((fds + $(ls "/proc/$pid/fd" 2>/dev/null | wc -l)))
  done
  echo "processes_of_user=$(pgrep -u "$uid" | wc -l)"
  echo "podrun_processes=$(echo -n "$podrun_pids" | grep -c . || true)"
  echo "podrun_open_fds=$fds"
  echo "mounts_under_run_dir=$(grep -c " $root" /proc/self/mountinfo || true)"
  echo "files_in_runtime_dir=$(find "$root/run" -mindepth 1 | wc -l)"
  echo "files_in_data_dir=$(find "$root/data/podrun" -mindepth 1 -not -path "*/storage/*" | wc -l)"
  echo "store_bytes=$(du -sb "$root/data/podrun/storage" | cut -f1)"
  echo "store_files=$(find "$root/data/podrun/storage" | wc -l)"
}

# The image is pulled and one cycle run before the census, so that what a first run creates
# for good (the store, podrun's directories) is counted in "before".
as_user "podrun pull -q busybox" >/dev/null
as_user "podrun play soak.yaml --wait-ready --timeout 60s && podrun down soak" >/dev/null
census >"$root/before"

times=$root/times
: >"$times"
echo "soak: $cycles cycles of play --wait-ready / down ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
for i in $(seq "$cycles"); do
  start=$(date +%s.%N)
  if ! as_user "podrun play soak.yaml --wait-ready --timeout 60s >/dev/null && podrun down soak >/dev/null"; then
    echo "cycle $i failed" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  echo "$start $end" | awk '{ printf "%.3f\n", $2 - $1 }' >>"$times"
  [ $((i % 50)) -eq 0 ] && echo "  $i cycles done"
done
sleep 1
census >"$root/after"

python3 - "$times" "$root/before" "$root/after" <<'EOF'
import statistics, sys
times = [float(l) for l in open(sys.argv[1]) if l.strip()]
print(f"cycle (play --wait-ready + down), s: first {times[0]:.3f}, median {statistics.median(times):.3f}, "
      f"last {times[-1]:.3f}, slowest {max(times):.3f}")
before = dict(l.strip().split("=") for l in open(sys.argv[2]))
after = dict(l.strip().split("=") for l in open(sys.argv[3]))
bad = False
print(f"{'':24} {'before':>12} {'after':>12}")
for key in before:
    mark = "" if before[key] == after[key] else "   <- differs"
    bad |= bool(mark)
    print(f"{key:24} {before[key]:>12} {after[key]:>12}{mark}")
sys.exit(1 if bad else 0)
EOF
