#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: set up the host, build podrun and the local
# demo images, serve them from a registry on 127.0.0.1, then, as an ordinary user, run the
# demo pod examples/pod-network.yaml (nginx + a collector sharing the pod's network and an
# emptyDir), show it, its logs, and take it down. (Docker Hub is unreachable here; the loopback registry stands in
# for it through a mirror entry in the user's podrun config.) Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/demo.sh: run as root (it installs packages and creates the demo user)" >&2
  exit 1
fi

bash scripts/install-deps.sh
bash scripts/create-test-user.sh >/dev/null
bash scripts/build-test-images.sh
bash scripts/test-registry.sh start
eval "$(bash scripts/test-registry.sh env)"

echo "== building podrun (release)"
cargo build --release -p podrun
install -m 0755 target/release/podrun /usr/local/bin/podrun

user=podrun-test
home=$(getent passwd "$user" | cut -d: -f6)
uid=$(id -u "$user")
runuser -u "$user" -- mkdir -p "$home/.config/podrun"
cat > "$home/.config/podrun/config.toml" <<TOML
# Docker Hub names (busybox, nginx:1.23) come from the local registry.
[registries."docker.io"]
mirrors = ["http://$PODRUN_TEST_REGISTRY"]
TOML
chown "$user:" "$home/.config/podrun/config.toml"

as_user() {
  runuser -u "$user" -- env HOME="$home" XDG_RUNTIME_DIR="/run/user/$uid" "$@"
}
pod=examples/pod-network.yaml
echo "== as $user: podrun play $pod"
as_user podrun down pod-network >/dev/null 2>&1 || true   # a pod left by an earlier demo
as_user podrun play - < "$pod"
echo "== podrun images"
as_user podrun images
sleep 5
echo "== podrun ps"
as_user podrun ps
echo "== podrun logs pod-network -c collect   (nginx status read over 127.0.0.1)"
as_user podrun logs pod-network -c collect | tail -n 4
echo "== podrun down pod-network"
as_user podrun down pod-network
