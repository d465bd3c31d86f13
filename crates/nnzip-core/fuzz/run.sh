#!/usr/bin/env bash
# Runs the `decompress` fuzz target for a bounded time and exits non-zero on a crash.
#
# Usage: crates/nnzip-core/fuzz/run.sh [SECONDS]   (default: 60)
#
# cargo-fuzz needs nightly compiler flags (-Z). RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them, so no nightly toolchain is needed. Install cargo-fuzz with
# `cargo install cargo-fuzz --locked`. The first build takes several minutes.
#
# The corpus is fuzz/corpus/decompress, seeded with the .nz files of tests/data. A crashing
# input is written to fuzz/artifacts/decompress/; rerun it with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run decompress ARTIFACT` from crates/nnzip-core.

set -euo pipefail

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
crate_dir=$(dirname "$fuzz_dir")
seconds=${1:-60}

if ! cargo fuzz --version > /dev/null 2>&1; then
    echo "error: cargo-fuzz not found; install it with: cargo install cargo-fuzz --locked" >&2
    exit 1
fi

corpus=$fuzz_dir/corpus/decompress
mkdir -p "$corpus"
cp "$crate_dir"/tests/data/*.nz "$corpus/"

cd "$crate_dir"
# -timeout is per input: the target decodes at most 1024 positions per stream, which takes
# about 1 s, so 20 s means a hang. The fuzzer exits with a non-zero status on a crash, a
# timeout or the RSS limit, and `set -e` passes it on.
RUSTC_BOOTSTRAP=1 cargo fuzz run decompress "$corpus" -- \
    -max_total_time="$seconds" \
    -rss_limit_mb=2048 \
    -timeout=20 \
    -print_final_stats=1
echo "OK: no crash in $seconds s of fuzzing"
