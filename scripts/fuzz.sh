#!/usr/bin/env bash
# Runs Porter's fuzz targets (fuzz/, cargo-fuzz + libFuzzer) for a given time
# each, one after the other, and prints each run's time, executions, corpus
# growth and findings (crash, timeout, OOM and leak files libFuzzer wrote).
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]      default: all 60
#
# Targets: xml_order, fixed_layout, clets_reader. Needs `cargo install
# cargo-fuzz`. Only stable Rust is assumed: the build uses no sanitizer
# (`-s none`), and RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass the few unstable
# flags it needs. Seeds are fuzz/seeds/<target>/ (read-only); the corpus
# grows in fuzz/corpus/<target>/, findings go to fuzz/artifacts/<target>/,
# logs to fuzz/logs/. KEEP_GOING=1 keeps fuzzing past a crash (fork mode).
# Exit status: 0 when no target found anything, 1 when one did, 2 on usage.
set -euo pipefail

ALL=(xml_order fixed_layout clets_reader)
target=${1:-all}
seconds=${2:-60}
case "$target" in
    all) targets=("${ALL[@]}") ;;
    xml_order | fixed_layout | clets_reader) targets=("$target") ;;
    *) echo "usage: $0 [all|${ALL[*]// /|}] [SECONDS]" >&2; exit 2 ;;
esac
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a number" >&2; exit 2; }
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2; exit 2; }

cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
mkdir -p logs

dict_for() {
    case "$1" in
        xml_order) echo dicts/xml.dict ;;
        fixed_layout) echo dicts/fixed.dict ;;
        clets_reader) echo dicts/clets.dict ;;
    esac
}

# Build first, so that the run times below are fuzzing only.
echo "== building ${targets[*]}"
build=()
(( ${#targets[@]} == 1 )) && build=("${targets[0]}")
cargo fuzz build -s none "${build[@]}" >logs/build.log 2>&1 || { tail -20 logs/build.log >&2; exit 2; }

found_any=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="logs/$t-$(date +%Y%m%dT%H%M%S).log"
    marker=$(mktemp)
    before=$(find "artifacts/$t" -type f | wc -l)
    extra=()
    if [[ "${KEEP_GOING:-0}" == 1 ]]; then
        extra=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    echo "== $t: ${seconds}s, log $log"
    start=$(date +%s)
    set +e
    cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -dict="$(dict_for "$t")" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
    status=$?
    set -e
    elapsed=$(( $(date +%s) - start ))
    # libFuzzer's own count of fuzzing time ("Done N runs in S second(s)").
    # (Each may find nothing, as after a crash: `|| true`.)
    fuzzed=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE '[0-9]+ second' | grep -oE '[0-9]+' | tail -1 || true)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    if [[ -z "$execs" ]]; then
        # No final stats (fork mode, or a crash): take the last status line.
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
    fi
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    corpus=$(find "corpus/$t" -type f | wc -l)
    after=$(find "artifacts/$t" -type f | wc -l)
    findings=$(( after - before ))
    (( findings > 0 )) && found_any=1
    line="$t: fuzzed ${fuzzed:-?}s (wall ${elapsed}s), ${execs:-?} execs (${rate:-?}/s), corpus $corpus, findings $findings, exit $status"
    echo "$line"
    if (( findings > 0 )); then
        find "artifacts/$t" -type f -newer "$marker" | sort | sed 's/^/  /'
        grep -m1 -A3 "panicked at" "$log" | sed 's/^/  /' || true
    elif (( status != 0 )); then
        echo "  cargo fuzz failed without a finding; see $log" >&2
        tail -5 "$log" | sed 's/^/  /' >&2
        found_any=1
    fi
    rm -f "$marker"
    summary+=("$line")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$found_any"
