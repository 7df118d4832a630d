#!/usr/bin/env bash
# Benchmark: Service forwarding for the shared pod network (issue 17). Builds the holder's
# shape without podrun and measures a client pod reaching a server pod:
#
#   direct    the server pod's address (10.89.0.3), bridged pod to pod
#   nft-1     a ClusterIP (10.96.0.10) DNATed to that pod by the ruleset podnet renders
#             (crates/podnet/src/services_nft.rs, printed by its `service_ruleset` example)
#   nft-2     a ClusterIP (10.96.0.11) spread over two server pods (numgen random map);
#             latency only: iperf3's control and data connections would land on different
#             servers
#   socat     a userspace proxy in the holder's namespace listening on a ClusterIP
#             (10.96.0.20, on the holder's lo), one socat process per connection (fork)
#
# Throughput: iperf3 -t SECONDS each way (client → server, and -R). Latency: connect +
# 1-byte echo + close, CONNECTS in a row (scripts/bench/tcplat.py's client, a one-thread echo
# server), p50/p99. REPS runs each,
# targets alternating; medians printed at the end (the runs also in
# /tmp/podrun-bench-services-UID.txt).
# Before measuring it checks the behaviours the ruleset promises: both endpoints of nft-2
# answer, a pod reaching its own Service (hairpin) works, a port with no endpoint is refused.
#
# Shape (all in namespaces made here; the only addresses used are theirs):
#   unshare --user --map-root-user --net --mount   "holder": bridge podrun0 10.89.0.1/24,
#       ip_forward=1, MTU 65520 as the real holder, the Service table loaded with nft -f
#   ip netns a, b, c (under a private tmpfs /run)   "pods": eth0 10.89.0.2/.3/.4 on veths
#
# Usage: bash scripts/bench/service-forwarding.sh [SECONDS] [CONNECTS] [REPS]   (5 1000 3)
# Works as an ordinary user (user namespaces only). Needs iproute2, nftables, iperf3, socat,
# python3 (scripts/install-deps.sh). The ruleset is rendered with cargo first; to run as
# a user without the toolchain, render it as another and pass it: RULESET=FILE.
# HAIRPIN=on|off: the bridge ports' hairpin flag (default on; see docs/benchmarks.md).
# BRNF=0|1 sets the holder's net.bridge.bridge-nf-call-iptables (default: left as it is).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5} connects=${2:-1000} reps=${3:-3}
export PATH=$PATH:/usr/sbin:/sbin

if [ -z "${SVCBENCH_INSIDE:-}" ]; then
  for tool in ip nft iperf3 socat python3 unshare; do
    command -v "$tool" >/dev/null || {
      echo "service-forwarding: $tool is missing (scripts/install-deps.sh)" >&2
      exit 1
    }
  done
  work=$(mktemp -d /tmp/podrun-bench-svc.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  if [ -n "${RULESET:-}" ]; then
    cp "$RULESET" "$work/services.nft"
  else
    cargo run -q -p podrun-podnet --example service_ruleset -- \
      10.96.0.10:5201=10.89.0.3:5201 10.96.0.10:7000=10.89.0.3:7000 \
      10.96.0.11:7000=10.89.0.3,10.89.0.4:7000 10.96.0.11:7001=10.89.0.3,10.89.0.4:7001 \
      10.96.0.12:80=:80 >"$work/services.nft"
  fi
  cp scripts/bench/tcplat.py "$work/"
  # The echo server: tcplat.py's serves each connection in a thread of its own, and its
  # threads' hand-offs (the GIL) put a 4-5 ms step into half the runs on this machine; one
  # thread with a selector has none.
  cat >"$work/echo.py" <<'EOF'
import selectors, socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", int(sys.argv[1])))
listener.listen(128)
listener.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(listener, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is listener:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sel.register(conn, selectors.EVENT_READ)
        else:
            data = key.fileobj.recv(4096)
            if data:
                key.fileobj.sendall(data)
            else:
                sel.unregister(key.fileobj)
                key.fileobj.close()
EOF
  chmod -R a+rX "$work"
  SVCBENCH_INSIDE=1 SVCBENCH_WORK="$work" SVCBENCH_OUT="/tmp/podrun-bench-services-$(id -u).txt" \
    unshare --user --map-root-user --net --mount bash "$0" "$secs" "$connects" "$reps"
  exit
fi

# ---- inside the holder's user, network and mount namespaces ----
work=$SVCBENCH_WORK
out=$SVCBENCH_OUT
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t tmpfs tmpfs /run
mkdir /run/netns
ip link set lo up
ip link add podrun0 type bridge
ip link set podrun0 mtu 65520
ip addr add 10.89.0.1/24 dev podrun0
ip link set podrun0 up
echo 1 >/proc/sys/net/ipv4/ip_forward
# The uplink as the holder has it (slirp4netns' tap0 and the default route through it), here a
# veth whose peer leads nowhere: whatever the rules let out is lost there.
ip link add tap0 type veth peer name tap0-end
ip addr add 10.0.2.100/24 dev tap0
ip link set tap0 up
ip link set tap0-end up
ip route add default via 10.0.2.2 dev tap0
[ -n "${BRNF:-}" ] && echo "$BRNF" >/proc/sys/net/bridge/bridge-nf-call-iptables
last=2
for pod in a b c; do
  ip netns add "$pod"
  ip link add "veth$pod" mtu 65520 type veth peer name eth0 mtu 65520 netns "$pod"
  ip link set "veth$pod" master podrun0 up
  [ "${HAIRPIN:-on}" = on ] && ip link set "veth$pod" type bridge_slave hairpin on
  ip -n "$pod" link set lo up
  ip -n "$pod" addr add "10.89.0.$last/24" dev eth0
  ip -n "$pod" link set eth0 up
  ip -n "$pod" route add default via 10.89.0.1
  last=$((last + 1))
done
nft -f "$work/services.nft"
# The userspace proxy's ClusterIP is local to the holder.
ip addr add 10.96.0.20/32 dev lo

in_pod() { local pod=$1; shift; ip netns exec "$pod" "$@"; }
# Servers: `ip netns exec` execs its command, so $! is the server itself.
for pod in b c; do
  ip netns exec "$pod" iperf3 -s >/dev/null 2>&1 & pids+=($!)
  ip netns exec "$pod" python3 "$work/echo.py" 7000 >/dev/null 2>&1 & pids+=($!)
  ip netns exec "$pod" socat TCP-LISTEN:7001,fork,reuseaddr "SYSTEM:echo $pod" >/dev/null 2>&1 &
  pids+=($!)
done
socat TCP-LISTEN:5201,bind=10.96.0.20,fork,reuseaddr TCP:10.89.0.3:5201 2>/dev/null & pids+=($!)
socat TCP-LISTEN:7000,bind=10.96.0.20,fork,reuseaddr TCP:10.89.0.3:7000 2>/dev/null & pids+=($!)
sleep 1

# ---- what the ruleset promises ----
python3 - <<'EOF' || { echo "service-forwarding: the checks failed" >&2; exit 1; }
import subprocess, socket, time
def run(pod, code):
    return subprocess.run(["ip", "netns", "exec", pod, "python3", "-c", code],
                          capture_output=True, text=True, timeout=30).stdout.strip()
spread = run("a", """
import socket, collections
seen = collections.Counter()
for _ in range(40):
    with socket.create_connection(("10.96.0.11", 7001), timeout=5) as s:
        seen[s.recv(16).decode().strip()] += 1
print(dict(sorted(seen.items())))
""")
print("nft-2 spread over 40 connections:", spread)
assert "'b'" in spread and "'c'" in spread, spread
hairpin = run("b", """
import socket
with socket.create_connection(("10.96.0.10", 7000), timeout=5) as s:
    s.sendall(b"x"); print(s.recv(1).decode())
""")
print("hairpin (pod b -> its own Service):", "ok" if hairpin == "x" else "FAILED " + hairpin)
assert hairpin == "x"
refused = run("a", """
import socket, time
start = time.perf_counter()
for target in [("10.96.0.12", 80), ("10.96.0.10", 9999)]:
    try:
        socket.create_connection(target, timeout=5).close(); print("connected", target)
    except ConnectionRefusedError:
        print("refused", target, f"{(time.perf_counter() - start) * 1000:.1f} ms")
    except OSError as e:
        print("error", target, e)
""")
print(refused)
assert refused.count("refused") == 2, refused
EOF

echo "bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo absent)" | tee "$out"
iperf() { # ADDR [-R] -> Gbit/s received
  in_pod a iperf3 -c "$1" -t "$secs" -J ${2:-} |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9, 2))'
}
latency() { # ADDR -> "p50 p99"
  in_pod a python3 "$work/tcplat.py" client "$1" 7000 "$connects" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["failed"]==0, r; print(r["p50_ms"], r["p99_ms"])'
}
declare -A addr=([direct]=10.89.0.3 [nft-1]=10.96.0.10 [nft-2]=10.96.0.11 [socat]=10.96.0.20)
targets=(direct nft-1 nft-2 socat)
for rep in $(seq "$reps"); do
  for t in "${targets[@]}"; do
    if [ "$t" = nft-2 ]; then up=- down=-; else
      up=$(iperf "${addr[$t]}"); down=$(iperf "${addr[$t]}" -R); fi
    read -r p50 p99 < <(latency "${addr[$t]}")
    echo "run $rep $t up=$up down=$down p50=$p50 p99=$p99" | tee -a "$out"
  done
done

python3 - "$out" <<'EOF'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"run \d+ (\S+) up=(\S+) down=(\S+) p50=(\S+) p99=(\S+)", line)
    if m:
        rows.setdefault(m[1], []).append(m.groups()[1:])
med = lambda xs: "-" if xs[0] == "-" else f"{statistics.median(map(float, xs)):.3g}"
print("| target | client → server Gbit/s | server → client Gbit/s | p50 ms | p99 ms |")
print("|---|---|---|---|---|")
for t, runs in rows.items():
    print(f"| {t} | " + " | ".join(med([r[i] for r in runs]) for i in range(4)) + " |")
EOF
