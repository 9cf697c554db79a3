#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang and runs each for a fixed time
# (tests/fuzz/README.md). A crash, hang, leak or sanitizer report is copied into
# tests/fuzz/regressions/<target>/ -- where dagd's own build replays it as a regression test --
# and the script exits 1 with the command that reproduces it.
#   scripts/fuzz.sh                 # 30 s per target (CI's fuzz_smoke: 20)
#   scripts/fuzz.sh 3600            # an hour per target
#   scripts/fuzz.sh 600 expr_fuzz   # only some targets
# Environment: DAGD_FUZZ_BUILD_DIR (default build-fuzz/), DAGD_FUZZ_CXX (default clang++),
# DAGD_FUZZ_JOBS (build jobs, default 1). The corpus grows in <build dir>/corpus/<target>/, a copy
# of the seeds in tests/fuzz/corpus/<target>/, so a longer run starts where the last one stopped.
# Exits 77 (CTest: skipped) when clang++ or libFuzzer is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

budget=${1:-30}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(parse_workflow_fuzz expr_fuzz tags_fuzz)
build_dir=${DAGD_FUZZ_BUILD_DIR:-$root/build-fuzz}
cxx=${DAGD_FUZZ_CXX:-clang++}
jobs=${DAGD_FUZZ_JOBS:-1}

if ! [[ $budget =~ ^[0-9]+$ ]] || ((budget == 0)); then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
if ! command -v "$cxx" >/dev/null; then
  echo "fuzz: $cxx not found; install clang-14 and libclang-rt-14-dev" >&2
  exit 77
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  >"$probe/probe.cc"
if ! "$cxx" -fsanitize=fuzzer "$probe/probe.cc" -o "$probe/probe" 2>/dev/null; then
  echo "fuzz: $cxx cannot link libFuzzer; install libclang-rt-14-dev" >&2
  exit 77
fi

start=$SECONDS
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S tests/fuzz -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
fi
cmake --build "$build_dir" -j"$jobs" -- "${targets[@]}"
echo "fuzz: build took $((SECONDS - start)) s"

# Leaks are bugs too (libFuzzer checks for them); UBSan stops at the first report with a stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
summary=()
for target in "${targets[@]}"; do
  corpus=$build_dir/corpus/$target
  artifacts=$build_dir/artifacts/$target
  regressions=$root/tests/fuzz/regressions/$target
  log=$build_dir/$target.log
  mkdir -p "$corpus" "$artifacts"
  cp -n tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  rm -f "$artifacts"/*
  read_only=()
  [ -d "$regressions" ] && read_only+=("$regressions")  # known crashes first: still fixed?
  echo "fuzz: $target for ${budget} s"
  rc=0
  "$build_dir/$target" -max_total_time="$budget" -rss_limit_mb=2048 -timeout=10 \
    -dict="tests/fuzz/$target.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
    "$corpus" "${read_only[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
  summary+=("$(printf '%-20s %10s execs %7s exec/s  %-20s corpus %s files' "$target" \
    "${execs:-?}" "${rate:-?}" "${cov:-cov: ?}" "$(find "$corpus" -type f | wc -l)")")
  if ((rc != 0)); then
    # The report: what went wrong and the top of its stack (libFuzzer's own frames left out).
    grep -E -A24 -m1 'ERROR: |runtime error:|invariant broken|is not InvalidArgument' "$log" |
      grep -v -E 'in fuzzer::|in __sanitizer|in __asan|in __ubsan|in std::__detail::_Executor' |
      cut -c1-220 >&2 || true
    grep -E '^SUMMARY' "$log" >&2 || true
    mkdir -p "$regressions"
    found=0
    for input in "$artifacts"/*; do
      [ -f "$input" ] || continue
      cp "$input" "$regressions/"
      found=1
      echo "fuzz: $target failed (exit $rc); kept tests/fuzz/regressions/$target/$(basename "$input")" >&2
      echo "fuzz: reproduce: $build_dir/$target tests/fuzz/regressions/$target/$(basename "$input")" >&2
    done
    ((found)) || echo "fuzz: $target failed (exit $rc) without an input; see $log" >&2
    failed+=("$target")
  fi
done

echo "fuzz: ${budget} s per target; logs in $build_dir/<target>.log"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
