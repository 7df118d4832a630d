#!/usr/bin/env bash
# Benchmark: pod networking. For each target, iperf3 for SECONDS each way (container -> host,
# host -> published port) and TCP connect + 1-byte echo latency (p50/p99 of CONNECTS, both
# ways), then the per-pod footprint (PSS of what the tool keeps alive besides the containers'
# own processes). Targets:
#   podrun-slirp4netns, podrun-pasta   podrun play --network …, allow_host_loopback = true
#   shared-slirp4netns, shared-pasta   podrun play --network shared (the user's network holder,
#                                      [network] shared_uplink = …): published ports are
#                                      slirp4netns host forwards, or with pasta relayed by the
#                                      holder itself in userspace (crates/podnet/src/relay.rs)
#   bare-slirp4netns, bare-pasta       the same helper, same flags, attached by hand to a
#                                      sandbox made with unshare (user + net namespace)
#   podman                             rootless podman 4.3: a pod with slirp4netns
#                                      (allow_host_loopback=true), -p through rootlessport
# The container runs busybox with the host's /usr, /usr/lib, /usr/lib64 mounted read-only
# (iperf3 and python3 come from the host). "container -> host" connects to 10.0.2.2, which
# every target maps to the host's 127.0.0.1; "host -> published port" connects to
# 127.0.0.1:18201 (iperf3) and 127.0.0.1:18207 (echo); "published port -> host" is the same
# iperf3 with -R (the pod sends).
#
# Everything runs inside a throw-away network namespace made here (lo, a veth pair with
# 192.0.2.1/24, a default route via 192.0.2.254 that leads nowhere): no packet leaves it.
# A dedicated user (podrun-bench, subordinate ids 300000-365535) keeps podman's per-user
# state and processes apart from the test user's.
#
# Usage (root): bash scripts/bench/network.sh [SECONDS] [CONNECTS] [REPS]   (default 5 500 3)
#               TARGETS="podrun-pasta bare-pasta" bash scripts/bench/network.sh   (a subset)
#   BYTES=500M    the published-port transfers move this much (iperf3 -n) instead of SECONDS
#   UP=0          skip container -> host (iperf3 and latency to 10.0.2.2)
#   PODRUN_BIN=…  the podrun to measure (default: target/release/podrun, built here)
# Published ports only, shared network against the rest, alternating, e.g.:
#   BYTES=500M UP=0 TARGETS="shared-slirp4netns shared-pasta podrun-slirp4netns podrun-pasta
#     podman shared-slirp4netns …" bash scripts/bench/network.sh 5 1000 2
# Prints one line per run and a table of medians (also in /tmp/podrun-bench-network.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5} connects=${2:-500} reps=${3:-3}
export BENCH_USER=${BENCH_USER:-podrun-bench}

if ! id -u "$BENCH_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$BENCH_USER"
  sed -i "/^$BENCH_USER:/d" /etc/subuid /etc/subgid
  echo "$BENCH_USER:300000:65536" >>/etc/subuid
  echo "$BENCH_USER:300000:65536" >>/etc/subgid
fi
source scripts/bench/lib.sh
bench_gid=$(id -g "$BENCH_USER")
install -d -o "$BENCH_USER" -g "$bench_gid" -m 0700 "/run/user/$BENCH_UID"
chmod 0666 /dev/net/tun

bash scripts/install-deps.sh >/dev/null
bash scripts/test-registry.sh start >/dev/null
eval "$(bash scripts/test-registry.sh env)"
setup_podman "$PODRUN_TEST_REGISTRY"
# PODRUN_BIN: the podrun to measure (default: this tree's, built for release).
if [ -z "${PODRUN_BIN:-}" ]; then
  cargo build --release -q -p podrun
  PODRUN_BIN=target/release/podrun
fi
bin=/usr/local/lib/podrun-bench
install -d "$bin"
install -m 0755 "$PODRUN_BIN" "$bin/podrun"
install -m 0644 scripts/bench/tcplat.py "$bin/tcplat.py"
image="$PODRUN_TEST_REGISTRY/library/busybox:latest"
work=$(mktemp -d /tmp/podrun-bench-net.XXXXXX)
chmod 0755 "$work"
chown "$BENCH_USER:" "$work"
out=/tmp/podrun-bench-network.txt
: >"$out"

runtime="/run/user/$BENCH_UID"
user_env="env -i HOME=$BENCH_HOME USER=$BENCH_USER PATH=$bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin XDG_RUNTIME_DIR=$runtime LANG=C.UTF-8"
mkdir -p "$BENCH_HOME/.config/podrun"
# podrun_config [SHARED_UPLINK]
podrun_config() {
  {
    echo "[network]"
    echo "allow_host_loopback = true"
    [ -z "${1:-}" ] || echo "shared_uplink = \"$1\""
  } >"$BENCH_HOME/.config/podrun/config.toml"
  chown -R "$BENCH_USER:" "$BENCH_HOME/.config"
}
podrun_config
# The registry is on the host's loopback, not in the benchmark's namespace: pull first.
runuser -u "$BENCH_USER" -- $user_env bash -c "podrun pull -q $image && podman pull -q $image" >/dev/null

ns=podrun-bench-$$
in_ns() { ip netns exec "$ns" "$@"; }
as_user() { ip netns exec "$ns" setpriv --reuid="$BENCH_UID" --regid="$bench_gid" --init-groups $user_env bash -c "$1"; }
cleanup() {
  as_user "podrun down netbench; podman pod rm -f nb" >/dev/null 2>&1 || true
  for pid in $(cat "$work"/*.pids 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  # What is left in the namespace (a server whose pid was a launcher's, not its own).
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
in_ns ip link set lo up
in_ns ip link add hs0 type veth peer name hs0p
in_ns ip addr add 192.0.2.1/24 dev hs0
in_ns ip link set hs0 up
in_ns ip link set hs0p up
in_ns ip route add default via 192.0.2.254 dev hs0

# The host side: iperf3 and echo servers on the namespace's 127.0.0.1.
in_ns iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null 2>&1 &
echo $! >>"$work/host.pids"
in_ns python3 "$bin/tcplat.py" server 7007 127.0.0.1 >/dev/null 2>&1 &
echo $! >>"$work/host.pids"

server_cmd="iperf3 -s -p 5201 -D && exec python3 $bin/tcplat.py server 7007"
cat >"$work/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: netbench}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: srv
    image: $image
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "$server_cmd"]
    ports:
    - {containerPort: 5201, hostPort: 18201}
    - {containerPort: 7007, hostPort: 18207}
    volumeMounts:
    - {name: usr, mountPath: /usr, readOnly: true}
    - {name: lib, mountPath: /lib, readOnly: true}
    - {name: lib64, mountPath: /lib64, readOnly: true}
  volumes:
  - {name: usr, hostPath: {path: /usr}}
  - {name: lib, hostPath: {path: /usr/lib}}
  - {name: lib64, hostPath: {path: /usr/lib64}}
EOF
chmod 0644 "$work/pod.yaml"

# PSS in kB of the given pids, from /proc/PID/smaps_rollup (root may read every process's,
# pasta's included, which is not dumpable).
pss() {
  local total=0 pid kb
  for pid in "$@"; do
    kb=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}
# "comm=PSS …" for the given pids.
pss_list() {
  local pid
  for pid in "$@"; do
    printf '%s=%s ' "$(cat "/proc/$pid/comm" 2>/dev/null)" "$(pss "$pid")"
  done
}

wait_published() {
  local deadline=$((SECONDS + 30))
  until in_ns python3 "$bin/tcplat.py" client 127.0.0.1 18207 1 2>/dev/null | grep -q '"n": 1'; do
    [ $SECONDS -lt $deadline ] || { echo "port 18207 never answered" >&2; return 1; }
    sleep 0.2
  done
}

gbits() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["end"]["sum_received"]["bits_per_second"]/1e9, 2))'; }

# measure TARGET INSIDE: INSIDE is the command prefix that runs a command in the container.
# A transfer that fails is recorded as "fail" (and left out of the medians).
measure() {
  local target=$1 inside=$2 rep up=- down rev lin lout
  local amount="-t $secs"
  [ -z "${BYTES:-}" ] || amount="-n $BYTES"
  wait_published
  for rep in $(seq "$reps"); do
    [ "${UP:-1}" = 0 ] || up=$(as_user "$inside iperf3 -c 10.0.2.2 -p 5201 -t $secs -J" | gbits) || up=fail
    down=$(in_ns iperf3 -c 127.0.0.1 -p 18201 $amount -J | gbits) || down=fail
    rev=$(in_ns iperf3 -c 127.0.0.1 -p 18201 $amount -R -J | gbits) || rev=fail
    lin=$(in_ns python3 "$bin/tcplat.py" client 127.0.0.1 18207 "$connects")
    lout='{"n": 0, "failed": 0, "p50_ms": null, "p99_ms": null}'
    [ "${UP:-1}" = 0 ] || lout=$(as_user "$inside python3 $bin/tcplat.py client 10.0.2.2 7007 $connects")
    echo "run $target $rep up=$up down=$down rev=$rev in=$lin out=$lout" | tee -a "$out"
  done
}

footprint() { # footprint TARGET PIDS…
  local target=$1
  shift
  echo "mem $target pss_kb=$(pss "$@") $(pss_list "$@")" | tee -a "$out"
}

podrun_target() {
  local backend=$1 dir sup helper watchdog
  as_user "podrun play --network $backend $work/pod.yaml" >/dev/null
  dir="$runtime/podrun/pods/default_netbench"
  sup=$(cat "$dir/supervisor.pid")
  if [ "$backend" = pasta ]; then helper=$(cat "$dir/pasta.pid"); else helper=$(pgrep -P "$sup" -x slirp4netns); fi
  # The watchdog that ends the pod if the supervisor is killed (podrun_pod::watchdog).
  watchdog=$(pgrep -P "$sup" -x podrun-watchdog)
  sleep 1
  footprint "podrun-$backend-idle" "$sup" "$helper" "$watchdog"
  measure "podrun-$backend" "podrun exec netbench --"
  footprint "podrun-$backend-after" "$sup" "$helper" "$watchdog"
  as_user "podrun down netbench" >/dev/null
}

# Until the user's network holder has ended (it lingers 10 s after its last pod): a holder
# started elsewhere (another network namespace, the other way out) must not serve the pod.
holder_gone() {
  local json="$runtime/podrun/network/holder.json" pid deadline=$((SECONDS + 60))
  while pid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["holder"]["pid"])' "$json" 2>/dev/null) &&
    kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "the network holder $pid did not end" >&2; return 1; }
    sleep 0.2
  done
}

# The shared network: the holder started here by the play, with the given way out.
shared_target() {
  local uplink=$1 dir sup watchdog holder helper
  holder_gone
  podrun_config "$uplink"
  as_user "podrun play --network shared $work/pod.yaml" >/dev/null
  dir="$runtime/podrun/pods/default_netbench"
  sup=$(cat "$dir/supervisor.pid")
  watchdog=$(pgrep -P "$sup" -x podrun-watchdog)
  read -r holder helper < <(python3 -c 'import json, sys; h = json.load(open(sys.argv[1])); print(h["holder"]["pid"], h["slirp4netns_pid"])' \
    "$runtime/podrun/network/holder.json")
  echo "shared-$uplink: holder $holder, way out $helper ($(cat "/proc/$helper/comm"))" | tee -a "$out"
  sleep 1
  footprint "shared-$uplink-idle" "$sup" "$watchdog" "$holder" "$helper"
  measure "shared-$uplink" "podrun exec netbench --"
  footprint "shared-$uplink-after" "$sup" "$watchdog" "$holder" "$helper"
  as_user "podrun down netbench" >/dev/null
  podrun_config
}

# A sandbox as podrun makes one, by hand: a user namespace with the subordinate range and a
# network namespace, held by `sleep`; the servers run in it through nsenter.
bare_target() {
  local helper=$1 holder hpid deadline
  rm -f "$work/holder.pid"
  as_user "setsid unshare --user --map-auto --map-root-user --net sh -c 'ip link set lo up; echo \$\$ > $work/holder.pid; exec sleep infinity' </dev/null >/dev/null 2>&1 &"
  deadline=$((SECONDS + 10))
  until [ -s "$work/holder.pid" ]; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.05; done
  holder=$(cat "$work/holder.pid")
  echo "$holder" >>"$work/bare.pids"
  if [ "$helper" = pasta ]; then
    # podrun's flags, without --foreground: pasta daemonizes once the namespace is ready.
    as_user "cd $work && pasta --config-net --quiet --log-file $work/pasta.log --pid $work/pasta.pid --ipv4-only --address 10.0.2.100 --netmask 24 --gateway 10.0.2.2 --ns-ifname tap0 --dns-forward 10.0.2.3 -t 18201:5201 -t 18207:7007 -u none -T none -U none $holder"
    hpid=$(cat "$work/pasta.pid")
  else
    rm -f "$work/slirp.sock"
    as_user "setsid slirp4netns --configure --mtu=65520 --enable-sandbox --enable-seccomp --api-socket $work/slirp.sock $holder tap0 </dev/null >$work/slirp.log 2>&1 & echo \$! > $work/slirp.pid"
    hpid=$(cat "$work/slirp.pid")
    deadline=$((SECONDS + 10))
    until [ -S "$work/slirp.sock" ]; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.05; done
    for ports in "18201 5201" "18207 7007"; do
      set -- $ports
      as_user "python3 -c 'import json, socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(json.dumps({\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_addr\": \"0.0.0.0\", \"host_port\": int(sys.argv[2]), \"guest_port\": int(sys.argv[3])}}).encode()); print(s.recv(4096).decode())' $work/slirp.sock $1 $2" >/dev/null
    done
  fi
  echo "$hpid" >>"$work/bare.pids"
  as_user "setsid nsenter -t $holder -U -n sh -c '$server_cmd' </dev/null >/dev/null 2>&1 &"
  sleep 1
  footprint "bare-$helper-idle" "$hpid"
  measure "bare-$helper" "nsenter -t $holder -U -n"
  footprint "bare-$helper-after" "$hpid"
  # Everything in the sandbox's network namespace, the helper and the holder.
  local netns
  netns=$(readlink "/proc/$holder/ns/net")
  for pid in $(pgrep -u "$BENCH_USER"); do
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$netns" ] && kill "$pid" 2>/dev/null
  done
  kill "$hpid" "$holder" 2>/dev/null || true
  sleep 0.5
}

podman_target() {
  as_user "podman pod create --name nb --network slirp4netns:allow_host_loopback=true -p 18201:5201 -p 18207:7007 >/dev/null && podman run -d --pod nb --name nbsrv -v /usr:/usr:ro -v /usr/lib:/lib:ro -v /usr/lib64:/lib64:ro $image sh -c '$server_cmd' >/dev/null"
  sleep 1
  # What podman keeps alive for the pod: conmon (infra and container), the infra
  # container's catatonit, the rootless pause process (catatonit), slirp4netns,
  # rootlessport (and its child), aardvark-dns if any.
  local pids
  pids=$(pgrep -u "$BENCH_USER" -x 'conmon|catatonit|slirp4netns|rootlessport|rootlessport-ch|exe|aardvark-dns' | tr '\n' ' ')
  ps -o pid,ppid,comm,args -u "$BENCH_USER" | tee -a "$out"
  footprint podman-idle $pids
  measure podman "podman exec nbsrv"
  footprint podman-after $pids
  as_user "podman pod rm -f nb" >/dev/null
}

echo "== network benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, iperf3 ${secs}s, $connects connects, $reps runs)" | tee -a "$out"
echo "versions: $(pasta --version 2>/dev/null | head -1); $(slirp4netns --version | head -1); $(podman --version)" | tee -a "$out"
# TARGETS (default: all, in this order) picks and orders the targets, e.g.
# TARGETS="podrun-pasta bare-pasta podrun-pasta bare-pasta".
for target in ${TARGETS:-podrun-slirp4netns bare-slirp4netns podrun-pasta bare-pasta podman}; do
  case $target in
    podrun-*) podrun_target "${target#podrun-}" ;;
    shared-*) shared_target "${target#shared-}" ;;
    bare-*) bare_target "${target#bare-}" ;;
    podman) podman_target ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
  esac
done

python3 - "$out" <<'PY'
import json, re, statistics, sys
runs, mem = {}, {}
num = lambda x: float(x) if re.fullmatch(r"[0-9.]+", x) else None
for line in open(sys.argv[1]):
    if line.startswith("run "):
        _, target, _, rest = line.split(" ", 3)
        m = re.match(r"up=(\S+) down=(\S+) (?:rev=(\S+) )?in=(\{.*?\}) out=(\{.*?\})", rest)
        up, down, rev = num(m.group(1)), num(m.group(2)), num(m.group(3) or "-")
        runs.setdefault(target, []).append((up, down, json.loads(m.group(4)), json.loads(m.group(5)), rev))
    elif line.startswith("mem "):
        _, target, kb = line.split()[:3]
        mem[target] = int(kb.split("=")[1])
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")
def span(xs):  # "median (min–max)"
    xs = [x for x in xs if x is not None]
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})" if xs else "-"
print("\n| target | runs | container→host Gbit/s | host→published port Gbit/s | published port→host Gbit/s | in: connect+echo p50 / p99 ms | out: p50 / p99 ms | PSS idle / after, MB |")
print("|---|---|---|---|---|---|---|---|")
for t, rs in runs.items():
    cell = lambda k, q: med([r[k][q] for r in rs])
    print(f"| {t} | {len(rs)} | {span([r[0] for r in rs])} | {span([r[1] for r in rs])} | {span([r[4] for r in rs])} | "
          f"{cell(2,'p50_ms'):.3f} / {cell(2,'p99_ms'):.3f} | {cell(3,'p50_ms'):.3f} / {cell(3,'p99_ms'):.3f} | "
          f"{mem.get(t+'-idle',0)/1000:.1f} / {mem.get(t+'-after',0)/1000:.1f} |")
for t, rs in runs.items():
    print(f"in p50 per run, {t}: " + " ".join(f"{r[2]['p50_ms']}" for r in rs))
for helper in ("slirp4netns", "pasta"):
    a, b = runs.get("podrun-" + helper), runs.get("bare-" + helper)
    if a and b:
        print(f"podrun-{helper} / bare-{helper}: up {med([r[0] for r in a])/med([r[0] for r in b]):.2f}, "
              f"down {med([r[1] for r in a])/med([r[1] for r in b]):.2f}")
a, b = runs.get("shared-pasta"), runs.get("shared-slirp4netns")
if a and b:
    print(f"shared-pasta (relay) / shared-slirp4netns (host forwards): host→port "
          f"{med([r[1] for r in a])/med([r[1] for r in b]):.2f}, port→host {med([r[4] for r in a])/med([r[4] for r in b]):.2f}, "
          f"in p50 {med([r[2]['p50_ms'] for r in a])/med([r[2]['p50_ms'] for r in b]):.2f}")
PY
