# Shared by the benchmark scripts: rootless podman for the test user, and an alternating
# A/B timer. Source it; run as root.

BENCH_USER=${BENCH_USER:-podrun-test}
BENCH_HOME=$(getent passwd "$BENCH_USER" | cut -d: -f6)
BENCH_UID=$(id -u "$BENCH_USER")

# Rootless podman as measured on this platform (docs/benchmarks.md): runc (crun refuses the
# hybrid cgroup layout), cgroupfs, file events, overlay storage, the loopback registry insecure.
setup_podman() {
  local registry=$1 graphroot=${2:-}
  if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      podman runc fuse-overlayfs catatonit time >/dev/null
  fi
  command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
  local conf="$BENCH_HOME/.config/containers"
  runuser -u "$BENCH_USER" -- mkdir -p "$conf"
  cat > "$conf/containers.conf" <<CONF
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  {
    echo "[storage]"
    echo 'driver = "overlay"'
    [ -n "$graphroot" ] && echo "graphroot = \"$graphroot\""
  } > "$conf/storage.conf"
  cat > "$conf/registries.conf" <<CONF
[[registry]]
location = "$registry"
insecure = true
CONF
  chown -R "$BENCH_USER:" "$conf"
}

# Runs a shell command line as the benchmark user with a normal rootless environment.
as_bench_user() {
  runuser -u "$BENCH_USER" -- env -i HOME="$BENCH_HOME" USER="$BENCH_USER" \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin XDG_RUNTIME_DIR="/run/user/$BENCH_UID" \
    ${BENCH_DATA_HOME:+XDG_DATA_HOME="$BENCH_DATA_HOME"} bash -c "$1"
}

# time_once PREPARE COMMAND: runs PREPARE (untimed), then COMMAND under /usr/bin/time;
# prints "wall user sys" in seconds.
time_once() {
  as_bench_user "$1" >/dev/null 2>&1 || true
  as_bench_user "/usr/bin/time -f '%e %U %S' -o /tmp/bench-time.\$\$ sh -c '$2' >/dev/null 2>&1; cat /tmp/bench-time.\$\$; rm -f /tmp/bench-time.\$\$"
}

# alternate RUNS NAME_A PREP_A CMD_A NAME_B PREP_B CMD_B: one untimed warm-up each, then
# A B A B …; prints per-run figures and a summary of medians and the A/B ratio pair by pair.
alternate() {
  local runs=$1 name_a=$2 prep_a=$3 cmd_a=$4 name_b=$5 prep_b=$6 cmd_b=$7
  local out
  out=$(mktemp)
  time_once "$prep_a" "$cmd_a" >/dev/null
  time_once "$prep_b" "$cmd_b" >/dev/null
  for _ in $(seq "$runs"); do
    echo "A $(time_once "$prep_a" "$cmd_a")" >> "$out"
    echo "B $(time_once "$prep_b" "$cmd_b")" >> "$out"
  done
  python3 - "$out" "$name_a" "$name_b" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
a = [(float(w), float(u) + float(s)) for k, w, u, s in rows if k == "A"]
b = [(float(w), float(u) + float(s)) for k, w, u, s in rows if k == "B"]
med = statistics.median
print(f"runs: {len(a)} pairs, alternating, after one warm-up each")
print(f"{'':28}{'wall s (min/med/max)':>26}{'cpu s (min/med/max)':>26}")
for name, xs in ((sys.argv[2], a), (sys.argv[3], b)):
    w = [x[0] for x in xs]; c = [x[1] for x in xs]
    print(f"{name:28}{min(w):8.3f}{med(w):8.3f}{max(w):8.3f}  {min(c):8.3f}{med(c):8.3f}{max(c):8.3f}")
rw = [x[0] / y[0] for x, y in zip(a, b) if y[0] > 0]
rc = [x[1] / y[1] for x, y in zip(a, b) if y[1] > 0]
print(f"{'ratio A/B, pair by pair':28}{min(rw):8.2f}{med(rw):8.2f}{max(rw):8.2f}  {min(rc):8.2f}{med(rc):8.2f}{max(rc):8.2f}")
PY
  rm -f "$out"
}
