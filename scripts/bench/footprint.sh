#!/usr/bin/env bash
# Benchmark: per-pod helper memory (issue 18). Plays the seed pod-network pod
# (examples/pod-network.yaml: nginx + a busybox collector sharing an emptyDir, with the test
# registry's images and without `ports:`, as scripts/bench/pod.sh plays it) with podrun and
# with rootless podman (`podman kube play`), alternating, RUNS times each, and prints the PSS
# (kB, /proc/PID/smaps_rollup, read as root) of every helper process the tool keeps alive
# besides the containers' own processes, IDLE seconds after the play returned:
#   podrun  the supervisor, its watchdog, slirp4netns
#   podman  conmon (one per container, the infra container's too), catatonit (the infra
#           container's and the user's rootless pause process), slirp4netns, rootlessport
#           and aardvark-dns if any
# once with one pod, once with PODS pods at once (per-pod average: the total / PODS).
#
# Usage (root): bash scripts/bench/footprint.sh [RUNS] [PODS] [IDLE]   (default 5 3 1.5)
#   PODRUN_BIN=/path/podrun    the podrun to measure (default: target/release/podrun, built
#                              if older than the sources)
#   PODRUN_BASE=/path/podrun   also measure this podrun (as "podrun-base"), alternating with
#                              the others: a before/after in the same run
#   TOOLS="podrun podman"      which tools, in this order (podrun-base is added by PODRUN_BASE);
#                              podrun-shared: podrun play --network shared (experimental,
#                              issue 17), whose network holder and its slirp4netns serve
#                              every pod of the user, as podman's rootless netns does;
#                              podrun-app: the pods in one file with a Service selecting them
#                              (issue 17: a file with Services runs on the shared network),
#                              so the holder also forwards a Service and answers its DNS name
#   DETAIL=1                   also print where each podrun helper's PSS goes (by mapping)
#   CPU=SECONDS                with one pod, also the helpers' CPU time over SECONDS after
#                              the measurement, and their PSS then
# Prints one line per run and a summary of medians (also in /tmp/podrun-bench-footprint.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
runs=${1:-5} pods=${2:-3} idle=${3:-1.5}

bash scripts/test-registry.sh start >/dev/null
eval "$(bash scripts/test-registry.sh env)"
setup_podman "$PODRUN_TEST_REGISTRY"

# The release binary, built once and reused while it is newer than every source.
if [ -z "${PODRUN_BIN:-}" ]; then
  PODRUN_BIN=target/release/podrun
  if [ ! -x "$PODRUN_BIN" ] || [ -n "$(find cli crates Cargo.toml Cargo.lock -newer "$PODRUN_BIN" \
    \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock -o -name build.rs \) -print -quit)" ]; then
    cargo build --release -q -p podrun
  fi
fi
tools=${TOOLS:-podrun podman}
[ -n "${PODRUN_BASE:-}" ] && tools="podrun-base $tools"
# Each podrun in a directory of its own (the supervisor runs /proc/self/exe).
root=/usr/local/lib/podrun-bench-footprint
install -d "$root/podrun"
install -m 0755 "$PODRUN_BIN" "$root/podrun/podrun"
if [ -n "${PODRUN_BASE:-}" ]; then
  install -d "$root/podrun-base"
  install -m 0755 "$PODRUN_BASE" "$root/podrun-base/podrun"
fi
runtime=/run/user/$BENCH_UID
# The directory of a podrun tool's binary, and its play's options.
bindir() { case $1 in podrun-shared | podrun-app) echo "$root/podrun" ;; *) echo "$root/$1" ;; esac; }
play_options() { case $1 in podrun-shared) echo "--network shared" ;; esac; }
as_user() { # as_user PATH_DIR COMMAND
  runuser -u "$BENCH_USER" -- env -i HOME="$BENCH_HOME" USER="$BENCH_USER" LANG=C.UTF-8 \
    PATH="$1:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" XDG_RUNTIME_DIR="$runtime" bash -c "$2"
}

# The seed pod, as pod.sh plays it; pod I (1..PODS) is named pod-network-I.
busybox="$PODRUN_TEST_REGISTRY/library/busybox:latest"
nginx="$PODRUN_TEST_REGISTRY/library/nginx:1.23"
work=$(mktemp -d /tmp/podrun-bench-footprint.XXXXXX)
chmod 0755 "$work"
for i in $(seq "$pods"); do
  sed -e "s|image: nginx:1.23|image: $nginx\n    imagePullPolicy: IfNotPresent|" \
      -e "s|image: busybox\$|image: $busybox\n    imagePullPolicy: IfNotPresent|" \
      -e '/^    ports:$/d' -e '/^    - containerPort: 80$/d' \
      -e "s|^  name: pod-network\$|  name: pod-network-$i|" \
      examples/pod-network.yaml >"$work/pod-$i.yaml"
done
# podrun-app: app-N.yaml holds pods 1..N, labelled, and a Service over their port 80.
for n in 1 "$pods"; do
  for i in $(seq "$n"); do
    sed -e 's|^  name: \(pod-network-.*\)$|  name: \1\n  labels:\n    app: footprint|' "$work/pod-$i.yaml"
    echo "---"
  done >"$work/app-$n.yaml"
  cat >>"$work/app-$n.yaml" <<YAML
apiVersion: v1
kind: Service
metadata:
  name: footprint
spec:
  selector:
    app: footprint
  ports:
  - port: 80
YAML
done
chmod 0644 "$work"/*.yaml
for tool in $tools; do
  case $tool in
    podrun*) as_user "$(bindir "$tool")" "podrun pull -q $nginx && podrun pull -q $busybox" >/dev/null ;;
    podman) as_user /nonexistent "podman pull -q $nginx && podman pull -q $busybox" >/dev/null ;;
  esac
done

down_all() { # down_all TOOL
  local i
  if [ "$1" = podrun-app ]; then # the largest file names every pod and the Service
    as_user "$(bindir "$1")" "podrun down $work/app-$pods.yaml" >/dev/null 2>&1 || true
    return
  fi
  for i in $(seq "$pods"); do
    case $1 in
      podrun*) as_user "$(bindir "$1")" "podrun down pod-network-$i" ;;
      podman) as_user /nonexistent "podman kube down $work/pod-$i.yaml" ;;
    esac
  done >/dev/null 2>&1 || true
}
cleanup() {
  local tool
  for tool in $tools; do down_all "$tool"; done
  rm -rf "$work"
}
trap cleanup EXIT

# utime + stime of the given pids, in clock ticks.
cpu_ticks() {
  local pid total=0
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

# Where a process's PSS goes: kB by kind of mapping (binary code/rodata/relro/data, heap,
# anonymous, stacks, libc, the dynamic loader, other libraries, the rest), as PSS/private.
detail() {
  python3 - "$1" <<'PY'
import re, sys
cats, private, cur = {}, {}, None
for line in open(f"/proc/{sys.argv[1]}/smaps"):
    f = line.split()
    if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
        perms, path = f[1], (f[5] if len(f) > 5 else "")
        if path.endswith("/podrun"):
            cur = "bin:" + {"r-xp": "code", "r--p": "rodata", "rw-p": "data"}.get(perms, perms)
        elif path == "[heap]": cur = "heap"
        elif path.startswith("[stack"): cur = "stack"
        elif path == "": cur = "anon"
        elif "/libc.so" in path: cur = "libc"
        elif "/ld-linux" in path: cur = "ld.so"
        elif ".so" in path: cur = "libs"
        else: cur = "other"
    elif f[0] == "Pss:" and cur:
        cats[cur] = cats.get(cur, 0) + int(f[1])
    elif f[0] in ("Private_Clean:", "Private_Dirty:") and cur:
        private[cur] = private.get(cur, 0) + int(f[1])
print(" ".join(f"{k}={v}/{private.get(k, 0)}" for k, v in sorted(cats.items(), key=lambda kv: -kv[1])))
PY
}

# helpers TOOL: "pid comm" of every helper process the tool keeps alive for its pods.
helpers() {
  local sup dir pid child
  case $1 in
    podrun*)
      for dir in "$runtime"/podrun/pods/default_pod-network-*; do
        sup=$(cat "$dir/supervisor.pid")
        echo "$sup supervisor"
        for pid in $(pgrep -P "$sup" -x 'podrun-watchdog|slirp4netns'); do
          echo "$pid $(cat "/proc/$pid/comm")"
        done
      done
      # --network shared: the user's network holder and its slirp4netns.
      if [ "$1" != podrun ] && [ "$1" != podrun-base ] && [ -f "$runtime/podrun/network/holder.json" ]; then
        python3 -c 'import json, sys; h = json.load(open(sys.argv[1]))
print(h["holder"]["pid"], "network-holder"); print(h["slirp4netns_pid"], "slirp4netns")' \
          "$runtime/podrun/network/holder.json"
      fi ;;
    podman)
      # Not a podrun pod's slirp4netns (other work of the same user may run pods); with
      # rootlessport's child (comm "exe") if ports were published.
      for pid in $(pgrep -u "$BENCH_USER" -x 'conmon|catatonit|slirp4netns|rootlessport|aardvark-dns'); do
        case $(tr '\0' ' ' <"/proc/$(awk '{print $4}' "/proc/$pid/stat")/cmdline") in podrun\ *) continue ;; esac
        echo "$pid $(cat "/proc/$pid/comm")"
        if [ "$(cat "/proc/$pid/comm")" = rootlessport ]; then
          for child in $(pgrep -P "$pid"); do echo "$child rootlessport-child"; done
        fi
      done ;;
  esac
}

out=/tmp/podrun-bench-footprint.txt
: >"$out"
# measure TOOL N RUN: plays N pods, waits IDLE seconds, prints the helpers' PSS, removes them.
measure() {
  local tool=$1 n=$2 run=$3 i total=0 list="" pid comm kb
  down_all "$tool"
  for i in $(seq "$n"); do
    case $tool in
      podrun-app) if [ "$i" = 1 ]; then as_user "$(bindir "$tool")" "podrun play $work/app-$n.yaml"; fi ;;
      podrun*) as_user "$(bindir "$tool")" "podrun play $(play_options "$tool") $work/pod-$i.yaml" ;;
      podman) as_user /nonexistent "podman kube play $work/pod-$i.yaml" ;;
    esac
  done >/dev/null
  sleep "$idle"
  while read -r pid comm; do
    kb=$(pss "$pid")
    total=$((total + kb))
    list="$list $comm=$kb"
    if [ -n "${DETAIL:-}" ] && [ "${tool#podrun}" != "$tool" ]; then
      echo "detail $tool $comm $pid pss=$kb $(detail "$pid")" | tee -a "$out"
    fi
  done < <(helpers "$tool")
  echo "mem $tool pods=$n run=$run total_kb=$total per_pod_kb=$((total / n)) |$list" | tee -a "$out"
  if [ -n "${CPU:-}" ] && [ "$n" = 1 ]; then
    local pids ticks0 ticks1 later=0
    pids=$(helpers "$tool" | awk '{print $1}')
    ticks0=$(cpu_ticks $pids)
    sleep "$CPU"
    ticks1=$(cpu_ticks $pids)
    for pid in $pids; do later=$((later + $(pss "$pid"))); done
    echo "cpu $tool run=$run seconds=$CPU cpu_ms=$(((ticks1 - ticks0) * 1000 / $(getconf CLK_TCK))) pss_kb_then=$later" | tee -a "$out"
  fi
  down_all "$tool"
}

echo "== per-pod helper memory ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $runs runs, idle ${idle}s; $(podman --version); $(slirp4netns --version | head -1))" | tee -a "$out"
echo "podrun: $("$root/podrun/podrun" --version | head -1)" | tee -a "$out"
for n in 1 "$pods"; do
  for run in $(seq "$runs"); do
    for tool in $tools; do measure "$tool" "$n" "$run"; done
  done
done

python3 - "$out" <<'PY'
import re, statistics, sys
per = {}
for line in open(sys.argv[1]):
    m = re.match(r"mem (\S+) pods=(\d+) run=\d+ total_kb=(\d+) per_pod_kb=(\d+) \|(.*)", line)
    if not m:
        continue
    tool, n, total = m.group(1), int(m.group(2)), int(m.group(3))
    procs = {}
    for item in m.group(5).split():
        comm, kb = item.rsplit("=", 1)
        procs.setdefault(comm, []).append(int(kb))
    per.setdefault((tool, n), []).append((total / n, {c: (sum(v), len(v)) for c, v in procs.items()}))
med = statistics.median
print("\n| tool | pods | per-pod PSS, MB (median, min–max) | processes (median kB each, count) |")
print("|---|---|---|---|")
meds = {}
for (tool, n), rows in per.items():
    totals = [r[0] for r in rows]
    meds[(tool, n)] = med(totals)
    comms = sorted({c for r in rows for c in r[1]})
    parts = []
    for c in comms:
        each = [r[1][c][0] / r[1][c][1] for r in rows if c in r[1]]
        count = med([r[1][c][1] for r in rows if c in r[1]])
        parts.append(f"{c} {med(each):.0f}×{count:g}")
    print(f"| {tool} | {n} | {med(totals)/1000:.2f} ({min(totals)/1000:.2f}–{max(totals)/1000:.2f}) | {', '.join(parts)} |")
for (tool, n), v in meds.items():
    if tool.startswith("podrun") and ("podman", n) in meds:
        print(f"{tool} / podman, {n} pod(s): {v / meds[('podman', n)]:.2f}×")
cpu = {}
for line in open(sys.argv[1]):
    m = re.match(r"cpu (\S+) run=\d+ seconds=(\S+) cpu_ms=(\d+) pss_kb_then=(\d+)", line)
    if m:
        cpu.setdefault((m.group(1), m.group(2)), []).append((int(m.group(3)), int(m.group(4))))
for (tool, secs), rows in cpu.items():
    print(f"{tool}: CPU over {secs} s after the measurement {med([r[0] for r in rows]):.0f} ms, "
          f"PSS then {med([r[1] for r in rows]) / 1000:.2f} MB (medians)")
PY
