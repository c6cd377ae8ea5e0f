#!/usr/bin/env bash
# The production build of Porter: a release build with profile-guided
# optimisation (PGO), trained on the broker's own intake work.
#
#   scripts/release.sh                  builds the porter binary
#   scripts/release.sh bench [ARGS...]  also builds the pipeline benchmark
#                                       the same way and runs it with ARGS
#                                       (default: --warm-up-time 1
#                                       --measurement-time 5)
#
# 1. builds the training program (examples/pgo_training.rs) instrumented
#    (-Cprofile-generate), in target/pgo-train;
# 2. runs it: the order messages of schemas/samples/ and
#    tests/fixtures/{xml,fixed,cms-b}/ (but not the benchmark's two inputs)
#    through the staged intake (`porter::intake::examine_batch`), valid and
#    invalid, XML and both layouts, then the CLETS translation and reader;
# 3. merges the profile with the llvm-profdata of rustc's own LLVM major
#    version (installed with apt as llvm-N when missing);
# 4. builds porter with -Cprofile-use in target/pgo and prints its path.
#
# The profile is the same for the binary and for the benchmark. The
# benchmark is not part of the training and its two inputs are left out
# of it, so it measures the code as production builds it. The builds pass --target, so that build scripts and
# proc macros are not instrumented, and keep flags already in RUSTFLAGS.
# Each is a full fat-LTO build (about 5 minutes each on the sixth session's
# two cores, 12 on slower ones). Logs are kept in target/pgo-data/*.log.
# If the training wrote no profile, `llvm-profdata merge` fails and so does
# the script. A function whose code does not match its profile (sources or
# features changed in between) only loses the optimisation; the script
# counts rustc's "hash mismatch" warnings after each profiled build.
#
# `cargo build --release` (and so `scripts/demo.sh`) is the same build
# without the profile: the same code, a little slower.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=binary
if [ "${1:-}" = bench ]; then
    mode=bench
    shift
fi

llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
profdata="llvm-profdata-$llvm_major"
if ! command -v "$profdata" >/dev/null; then
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$llvm_major" >/dev/null
fi

data="$root/target/pgo-data"
raw="$data/raw"
merged="$data/porter.profdata"
rm -rf "$raw"
mkdir -p "$raw"

host=$(rustc -vV | sed -n 's/^host: //p')
flags=${RUSTFLAGS:-}

# Runs `cargo $3...` into target dir $1 (`$2` names the build) with
# RUSTFLAGS plus $extra; its output goes to the file named in $log
# (target/pgo-data/<what>.log), which the caller may read afterwards.
# Prints how many functions did not match the profile, if any.
build() {
    local dir=$1 what=$2
    shift 2
    log="$data/$what.log"
    if ! CARGO_TARGET_DIR="$dir" RUSTFLAGS="$flags $extra" \
        cargo "$@" --locked --target "$host" >"$log" 2>&1; then
        tail -30 "$log" >&2
        echo "release: the $what build failed; its output is in $log" >&2
        exit 1
    fi
    local mismatched
    mismatched=$(grep -c "hash mismatch" "$log" || true)
    if [ "$mismatched" -gt 0 ]; then
        echo "release: $mismatched functions did not match the profile (see $log)" >&2
    fi
}

echo "release: building the instrumented training program (target/pgo-train)" >&2
extra="-Cprofile-generate=$raw"
build "$root/target/pgo-train" training build --release --example pgo_training
echo "release: training" >&2
trained=$("$root/target/pgo-train/$host/release/examples/pgo_training")
echo "release: $trained" >&2
"$profdata" merge -o "$merged" "$raw"/*.profraw

extra="-Cprofile-use=$merged"
echo "release: building porter with the profile (target/pgo)" >&2
build "$root/target/pgo" porter build --release --bin porter
echo "$root/target/pgo/$host/release/porter"

if [ "$mode" = bench ]; then
    echo "release: building the pipeline benchmark with the same profile" >&2
    build "$root/target/pgo" bench bench --bench pipeline --no-run
    binary=$(sed -n 's/.*Executable .*(\(.*\))$/\1/p' "$log" | tail -1)
    if [ -z "$binary" ]; then
        echo "release: no benchmark executable named in $log" >&2
        exit 1
    fi
    if [ $# -eq 0 ]; then set -- --warm-up-time 1 --measurement-time 5; fi
    CARGO_TARGET_DIR="$root/target/pgo" "$binary" --bench "$@"
fi
