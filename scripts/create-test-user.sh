#!/usr/bin/env bash
# Creates (idempotently) the ordinary user the end-to-end tests run podrun as, and what a
# rootless user needs on a host without systemd/logind. Prints the user's uid. Run as root.
set -euo pipefail

user=podrun-test
home=/home/$user
subid="$user:200000:65536"

if [ "$(id -u)" -ne 0 ]; then
  echo "create-test-user: run as root" >&2
  exit 1
fi

if ! id -u "$user" >/dev/null 2>&1; then
  useradd --create-home --home-dir "$home" --shell /bin/bash "$user"
  # useradd gives a new user the next free subordinate range on its own (even with
  # -K SUB_UID_COUNT=0 in shadow 4.13); drop it: the tests expect exactly the range below.
  sed -i "/^$user:/d" /etc/subuid /etc/subgid
fi

# Subordinate ids for the user namespace (newuidmap/newgidmap read these). Added only when
# the user has no range yet; an existing different range is left alone, with a warning.
for file in /etc/subuid /etc/subgid; do
  touch "$file"
  if grep -qx "$subid" "$file"; then
    continue
  elif grep -q "^$user:" "$file"; then
    echo "create-test-user: $file already has another range for $user:" \
      "$(grep "^$user:" "$file" | tr '\n' ' ')(expected $subid)" >&2
  else
    echo "$subid" >>"$file"
  fi
done

uid=$(id -u "$user")
gid=$(id -g "$user")

# No logind here: nothing creates the user's runtime directory (XDG_RUNTIME_DIR).
mkdir -p "/run/user/$uid"
chown "$uid:$gid" "/run/user/$uid"
chmod 0700 "/run/user/$uid"

# slirp4netns and pasta open /dev/net/tun from inside the user namespace, where host root is
# unmapped, so they need it world-accessible. Most distributions ship it 0666; the Debian
# image of this VM ships it 0600.
if [ -c /dev/net/tun ]; then
  chmod 0666 /dev/net/tun
fi

echo "$uid"
