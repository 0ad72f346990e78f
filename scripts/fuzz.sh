#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for $1 seconds (default 20)
# on its seed corpus. New inputs go to build-fuzz/corpus/<target>/, crashes to build-fuzz/.
# A longer run: bash scripts/fuzz.sh 3600
set -euo pipefail
seconds=${1:-20}
cd "$(dirname "$0")/.."
export CC=clang CXX=clang++
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DAGENT_FUZZ=ON -DAGENT_BUILD_TESTS=OFF -DAGENT_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_toml_config fuzz_proc_net_dev fuzz_spool_record fuzz_registry_answer fuzz_plugin_output fuzz_post_body \
  fuzz_proc_host fuzz_argus_node
run() {
  local target=$1 seeds=$2
  mkdir -p "build-fuzz/corpus/$target"
  echo "fuzz: $target for ${seconds}s"
  (cd build-fuzz && ASAN_OPTIONS=detect_leaks=1 "./$target" -max_total_time="$seconds" -max_len=65536 \
     -print_final_stats=1 "corpus/$target" "../$seeds" 2>&1 | tail -n 12)
}
run fuzz_toml_config tests/fuzz/corpus/toml
run fuzz_proc_net_dev tests/fuzz/corpus/procnetdev
run fuzz_spool_record tests/fuzz/corpus/batch
run fuzz_registry_answer tests/fuzz/corpus/registry
run fuzz_plugin_output tests/fuzz/corpus/plugin
run fuzz_post_body tests/fuzz/corpus/post
run fuzz_proc_host tests/fuzz/corpus/prochost
run fuzz_argus_node tests/fuzz/corpus/argus
