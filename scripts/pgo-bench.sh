#!/usr/bin/env bash
# An experiment, not the project's benchmark: runs the pipeline benchmark
# (benches/pipeline.rs) built with profile-guided optimisation, to see what
# a profile-guided build gains on the `cms-a/1` pipeline (issue 3, item 10;
# benches/README.md, "seventh session").
#
#   scripts/pgo-bench.sh [CRITERION ARGS...]     default: --warm-up-time 1 --measurement-time 5
#
# 1. builds the bench instrumented (-Cprofile-generate) in target/pgo-gen;
# 2. trains it: both pipelines (XML and cms-a/1) under --profile-time 3;
# 3. merges the profile with the llvm-profdata of rustc's own LLVM major
#    version (installed with apt as llvm-N when missing);
# 4. builds the bench with -Cprofile-use in target/pgo-use and runs it.
#
# The builds pass --target, so that build scripts and proc macros are not
# instrumented. Flags already in RUSTFLAGS are kept (the seventh session's
# machine-function-splitting run added
# `-Cllvm-args=-enable-split-machine-functions` that way). Each build's
# output is kept in target/pgo-data/build-*.log.
#
# The training input is the benchmark's own sample, so the figure is an
# upper bound for what PGO gives: a production build would train on a broad
# set of real messages. Each build is a full fat-LTO build (RUSTFLAGS change
# every crate): about 12 minutes each on two cores. Nothing here changes
# how `cargo build --release` or `cargo bench` build. The best-of figures of
# the seventh session need docs/experiments/min-share.diff applied first
# (`git apply docs/experiments/min-share.diff`; undo with `git checkout
# benches/pipeline.rs`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
profdata="llvm-profdata-$llvm_major"
if ! command -v "$profdata" >/dev/null; then
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$llvm_major" >/dev/null
fi

raw="$root/target/pgo-data"
merged="$root/target/pgo-data/merged.profdata"
rm -rf "$raw"
mkdir -p "$raw"

host=$(rustc -vV | sed -n 's/^host: //p')
flags=${RUSTFLAGS:-}

# Builds the bench into target dir $1 with the extra flags $2, and prints
# the path of the executable (`cargo bench --no-run` names it last).
bench_binary() {
    local log="$raw/build-$(basename "$1").log" binary
    if ! CARGO_TARGET_DIR="$1" RUSTFLAGS="$flags $2" \
        cargo bench --locked --target "$host" --bench pipeline --no-run >"$log" 2>&1; then
        tail -30 "$log" >&2
        echo "pgo-bench: the build failed; its output is in $log" >&2
        exit 1
    fi
    binary=$(sed -n 's/.*Executable .*(\(.*\))$/\1/p' "$log" | tail -1)
    if [ -z "$binary" ]; then
        echo "pgo-bench: no executable named in $log" >&2
        exit 1
    fi
    echo "$binary"
}

echo "pgo-bench: building the instrumented bench (target/pgo-gen)" >&2
gen=$(bench_binary "$root/target/pgo-gen" "-Cprofile-generate=$raw")
echo "pgo-bench: training" >&2
"$gen" --bench --profile-time 3 cms-a-1/pipeline >/dev/null
"$gen" --bench --profile-time 3 xml/pipeline >/dev/null
"$profdata" merge -o "$merged" "$raw"/*.profraw

echo "pgo-bench: building the bench with the profile (target/pgo-use)" >&2
use=$(bench_binary "$root/target/pgo-use" "-Cprofile-use=$merged")
if [ $# -eq 0 ]; then set -- --warm-up-time 1 --measurement-time 5; fi
CARGO_TARGET_DIR="$root/target/pgo-use" "$use" --bench "$@"
