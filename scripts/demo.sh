#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: set up the host, build podrun and the local
# demo images, serve them from a registry on 127.0.0.1, then, as an ordinary user, pull them
# with podrun and list them. (Docker Hub is unreachable here; the loopback registry stands in
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
echo "== as $user: podrun pull busybox nginx:1.23"
as_user podrun pull busybox nginx:1.23
echo "== as $user: podrun images"
as_user podrun images
