#!/usr/bin/env bash
# Runs each fuzz target (fuzz/) under AFL++ for SECONDS (default 600) and prints the
# executions, crashes and hangs of each. Needs `cargo install cargo-afl` and
# `cargo afl config --build` once. Exit status 1 when any target found a crash or hang.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here/fuzz"
seconds=${1:-600}
targets=${FUZZ_TARGETS:-"frame request"}
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
cargo afl build --release -q
seeds=$(mktemp -d)
cp "$here"/tests/fixtures/protocol/*.bin "$seeds/"
status=0
for target in $targets; do
  out="$here/fuzz/out/$target"
  rm -rf "$out"
  mkdir -p "$here/fuzz/out"
  # -V: stop after SECONDS; -t: a hang is an input taking over 1 s.
  cargo afl fuzz -i "$seeds" -o "$out" -V "$seconds" -t 1000 \
    "$here/fuzz/target/release/$target" >"$out.log" 2>&1 || true
  stats="$out/default/fuzzer_stats"
  execs=$(awk -F: '/^execs_done/ {gsub(/ /,"",$2); print $2}' "$stats")
  crashes=$(awk -F: '/^saved_crashes/ {gsub(/ /,"",$2); print $2}' "$stats")
  hangs=$(awk -F: '/^saved_hangs/ {gsub(/ /,"",$2); print $2}' "$stats")
  echo "$target: execs=$execs crashes=$crashes hangs=$hangs"
  if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then status=1; fi
done
rm -rf "$seeds"
exit $status
