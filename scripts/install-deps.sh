#!/usr/bin/env bash
# Installs everything podrun needs to build, run and be tested on Debian 12.
# Idempotent: a second run only checks. Run as root.
set -euo pipefail

packages=(
  # build
  build-essential pkg-config libseccomp-dev
  # rootless runtime: user namespaces, user-mode networking
  uidmap slirp4netns passt iproute2
  # the shared pod network's masquerade rule (crates/podnet/src/nft.rs)
  nftables
  # network benchmarks (scripts/bench/network.sh; service-forwarding.sh: socat as the
  # userspace proxy it measures against nftables)
  iperf3 socat
  # test images and the loopback test registry
  docker-registry busybox-static debootstrap zstd python3 curl jq
  # shell completion tests (tests/e2e/tests/cli.rs)
  zsh fish
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # docker-registry's maintainer script may try to start a service; there is no init system
  # here, and the tests start their own registry, so a failing start is harmless.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The distribution service started by the package (if any) must not hold port 5000 or the
# test registry's storage.
pkill -x docker-registry 2>/dev/null || true

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi
echo "install-deps: ok"
