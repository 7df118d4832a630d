#!/usr/bin/env bash
# Writes podrun's man pages, podrun.1 and podrun-COMMAND.1 for each command, generated from the
# same definitions as --help (clap_mangen), for packagers:
#
#   scripts/gen-man.sh [OUT_DIR]     (default target/man; PODRUN_BIN: the binary, else
#                                     target/debug/podrun, built first)
#   man -l target/man/podrun-play.1
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/man}
if [ -z "${PODRUN_BIN:-}" ]; then
  cargo build -q -p podrun
  PODRUN_BIN=target/debug/podrun
fi
"$PODRUN_BIN" __man "$out"
echo "gen-man: $(ls "$out" | wc -l) pages in $out"
