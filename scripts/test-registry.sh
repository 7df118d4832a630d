#!/usr/bin/env bash
# The loopback registries the tests pull from, serving the storage that
# scripts/build-test-images.sh filled (/var/cache/podrun-test/registry):
#   127.0.0.1:5858  Debian's docker-registry, anonymous, plain HTTP
#   127.0.0.1:5859  proxy with token auth (user podrun, password s3cret)
#   127.0.0.1:5860  proxy that corrupts the layer blobs of test/corrupt, and serves any
#                   repository REPO as faults/SESSION/SPEC/REPO with the faults SPEC names
#                   (500s, 429, cut, reset, stalled, dripping, swapped, endless blobs...:
#                   see tests/support/registry_proxy.py)
# Usage: test-registry.sh start|stop|restart|status|env
# `start` is idempotent and returns once all three answer; pid files and logs are in
# /run/podrun-test/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

storage=${PODRUN_TEST_CACHE:-/var/cache/podrun-test}/registry
rundir=/run/podrun-test
registry_addr=127.0.0.1:5858
auth_addr=127.0.0.1:5859
fault_addr=127.0.0.1:5860
auth_user=podrun
auth_password=s3cret
proxy="$here/../tests/support/registry_proxy.py"
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)

# Is the process of pid file $1 alive and is it ours (its command line contains $2)? A stale
# pid file could name an unrelated process that reused the pid.
running() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2"
}

# Starts "$@" in its own session, detached from this shell, logging to $2's log; $1 names it.
daemon() {
  local name=$1
  shift
  # The inner shell writes its own pid and execs, so the pid file is right whether or not
  # setsid forks.
  # shellcheck disable=SC2016 # $$ and $@ are for the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$rundir/$name.pid" "$@" \
    >>"$rundir/$name.log" 2>&1 </dev/null &
}

# HTTP status of a GET (000 when nothing answers).
status_of() {
  curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$1" || true
}

port_taken() {
  [ "$(status_of "$1/")" != 000 ]
}

start_one() {
  local name=$1 addr=$2 marker=$3
  shift 3
  if running "$rundir/$name.pid" "$marker"; then
    return
  fi
  if port_taken "$addr"; then
    echo "test-registry: $addr is in use by another process; not starting $name" >&2
    exit 1
  fi
  daemon "$name" "$@"
}

start() {
  if [ ! -d "$storage/docker/registry/v2" ]; then
    echo "test-registry: $storage has no images: run scripts/build-test-images.sh first" >&2
    exit 1
  fi
  mkdir -p "$rundir"
  # No blob descriptor cache: build-test-images.sh may swap the storage under a running
  # registry, which then must read the new content.
  cat >"$rundir/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $registry_addr
  headers:
    X-Content-Type-Options: [nosniff]
EOF
  start_one registry "$registry_addr" "$rundir/registry.yml" \
    docker-registry serve "$rundir/registry.yml"
  start_one auth-proxy "$auth_addr" "--listen $auth_addr" \
    "$python" "$proxy" --listen "$auth_addr" --upstream "http://$registry_addr" \
    --token-auth "$auth_user:$auth_password"
  start_one fault-proxy "$fault_addr" "--listen $fault_addr" \
    "$python" "$proxy" --listen "$fault_addr" --upstream "http://$registry_addr" \
    --corrupt-repo test/corrupt

  # Ready when the registry answers and each proxy answers as it should: 401 without a
  # token on the auth proxy, the registry's 200 through the fault proxy.
  for _ in $(seq 100); do
    if [ "$(status_of "$registry_addr/v2/")" = 200 ] &&
      [ "$(status_of "$auth_addr/v2/")" = 401 ] &&
      [ "$(status_of "$fault_addr/v2/")" = 200 ]; then
      echo "test-registry: running ($registry_addr, auth $auth_addr, fault $fault_addr)"
      return
    fi
    sleep 0.1
  done
  echo "test-registry: did not come up in 10 s; logs in $rundir:" >&2
  tail -n 5 "$rundir"/*.log >&2 || true
  exit 1
}

stop_one() {
  local name=$1 marker=$2 pid
  if running "$rundir/$name.pid" "$marker"; then
    pid=$(cat "$rundir/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$rundir/$name.pid"
}

stop() {
  stop_one fault-proxy "--listen $fault_addr"
  stop_one auth-proxy "--listen $auth_addr"
  stop_one registry "$rundir/registry.yml"
  echo "test-registry: stopped"
}

status() {
  local rc=0
  for entry in "registry $rundir/registry.yml" "auth-proxy --listen $auth_addr" \
    "fault-proxy --listen $fault_addr"; do
    name=${entry%% *}
    if running "$rundir/$name.pid" "${entry#* }"; then
      echo "$name: running (pid $(cat "$rundir/$name.pid"))"
    else
      echo "$name: stopped"
      rc=1
    fi
  done
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status) status ;;
  env)
    cat <<EOF
export PODRUN_TEST_REGISTRY=$registry_addr
export PODRUN_TEST_AUTH_REGISTRY=$auth_addr
export PODRUN_TEST_AUTH_USER=$auth_user
export PODRUN_TEST_AUTH_PASSWORD=$auth_password
export PODRUN_TEST_FAULT_REGISTRY=$fault_addr
EOF
    ;;
  *)
    echo "usage: $0 start|stop|restart|status|env" >&2
    exit 2
    ;;
esac
