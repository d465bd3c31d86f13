#!/usr/bin/env bash
# Checks that nnzip-core writes the same .nz bytes whatever the CPU features and thread count.
#
# Builds the release binary and compresses fixed inputs with the default model natively with
# --threads 1 and --threads 2. Then it compresses and decompresses a few small inputs under
# qemu-x86_64, once with a CPU model that has no AVX, AVX2, FMA or AVX-512 and once with one
# that has AVX2 and FMA but no AVX-512. Those run with the default and the fast model, and
# with the test models (plain, with retrieval, with retrieval and an index) against the .nz
# files that the Python reference wrote. Candle's matmul kernels and nnzip-core's state
# update pick their SIMD code at run time (AVX-512, AVX2 or baseline), so each emulated run
# takes other code paths than the host.
# All outputs must match byte for byte, and every decoded file must equal its input.
#
# Usage: crates/nnzip-core/tests/cross_cpu.sh
#
# Environment:
#   NNZIP_MODEL       model file (default: models/nnzip-small-v3.safetensors in the repository)
#   QEMU_CPU_MODEL    qemu -cpu model without AVX2 (default: Westmere)
#   QEMU_AVX2_CPU_MODEL  qemu -cpu model with AVX2 and FMA but no AVX-512 (default: max,
#                     which is that on qemu 7.2)
#   QEMU_INPUT_BYTES  size of the text slice coded under qemu with the default model
#                     (default: 1024)
#   KEEP_WORK_DIR=1   keep the temporary folder with all outputs
#
# Exits 0 when everything matches, 1 on any mismatch or failed command. When qemu-x86_64 is
# missing and cannot be installed with apt-get, it runs the native checks only, prints SKIP
# for the emulated part and exits 0.

set -euo pipefail

crate_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo_root=$(cd "$crate_dir/../.." && pwd)
model=${NNZIP_MODEL:-$repo_root/models/nnzip-small-v3.safetensors}
qemu_cpu=${QEMU_CPU_MODEL:-Westmere}
qemu_avx2_cpu=${QEMU_AVX2_CPU_MODEL:-max}
fast_model=$repo_root/models/nnzip-fast-v2.safetensors
qemu_input_bytes=${QEMU_INPUT_BYTES:-1024}
binary=$crate_dir/target/release/nnzip-core

# The text input comes from the shared data folder beside or inside the checkout, as in
# nnzip/data.py.
text_source=$repo_root/../shared/data/gutenberg/pg41.txt
if [[ ! -f $text_source ]]; then
    text_source=$repo_root/shared/data/gutenberg/pg41.txt
fi

failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# Runs a command and prints its wall time in seconds, or counts a failure if it fails.
# Arguments: label, command...
timed() {
    local label=$1
    shift
    local started=$EPOCHREALTIME
    if ! "$@"; then
        fail "$label: command failed: $*"
        return 0
    fi
    local elapsed
    elapsed=$(awk -v start="$started" -v end="$EPOCHREALTIME" 'BEGIN { print end - start }')
    printf '  %-52s %8.2f s\n' "$label" "$elapsed"
}

# Compares two files byte for byte and counts a failure on a difference.
same_bytes() {
    local expected=$1 actual=$2
    if ! cmp -s "$expected" "$actual"; then
        fail "$actual differs from $expected"
        cmp "$expected" "$actual" | head -1 >&2 || true
    fi
}

if [[ ! -f $model ]]; then
    echo "error: model $model not found; set NNZIP_MODEL to a model file" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nnzip-cross-cpu.XXXXXX")
if [[ ${KEEP_WORK_DIR:-0} == 1 ]]; then
    echo "work folder: $work"
else
    trap 'rm -rf "$work"' EXIT
fi

echo "== build"
timed "cargo build --release" \
    cargo build --release --quiet --manifest-path "$crate_dir/Cargo.toml"
if ((failures > 0)); then
    exit 1
fi

# Inputs: the fixtures and 20,000 bytes of English text (5 streams).
mkdir -p "$work/in"
for fixture in "$crate_dir"/tests/data/*.bin; do
    cp "$fixture" "$work/in/"
done
if [[ -f $text_source ]]; then
    head -c 20000 "$text_source" > "$work/in/text_20k.txt"
else
    echo "note: $text_source not found; using the text_10k fixture twice as the 20 KB text"
    cat "$crate_dir/tests/data/text_10k.bin" "$crate_dir/tests/data/text_10k.bin" \
        > "$work/in/text_20k.txt"
fi

echo "== native, model $(basename "$model")"
mkdir -p "$work/native1" "$work/native2" "$work/decoded"
for input in "$work"/in/*; do
    name=$(basename "$input")
    timed "compress $name --threads 1" \
        "$binary" compress "$input" -o "$work/native1/$name.nz" --model "$model" --threads 1 -q
    timed "compress $name --threads 2" \
        "$binary" compress "$input" -o "$work/native2/$name.nz" --model "$model" --threads 2 -q
    same_bytes "$work/native1/$name.nz" "$work/native2/$name.nz"
    timed "decompress $name --threads 2" \
        "$binary" decompress "$work/native1/$name.nz" -o "$work/decoded/$name" \
        --model "$model" --threads 2 -q
    same_bytes "$input" "$work/decoded/$name"
done

echo "== qemu"
if ! command -v qemu-x86_64 > /dev/null; then
    if command -v apt-get > /dev/null && [[ $(id -u) == 0 ]]; then
        echo "qemu-x86_64 not found; installing qemu-user with apt-get"
        if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user; } \
            > "$work/apt.log" 2>&1; then
            tail -5 "$work/apt.log" >&2
        fi
    fi
fi
if ! command -v qemu-x86_64 > /dev/null; then
    echo "SKIP: qemu-x86_64 is not installed and apt-get could not install qemu-user;" \
        "only the native checks ran"
    if ((failures > 0)); then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    exit 0
fi
qemu-x86_64 --version | head -1

# The emulated check is only meaningful if the emulated CPU really lacks the SIMD extensions
# that the host has, so a small probe prints what Rust's run-time detection (CPUID) reports.
# /proc/cpuinfo is no such check: qemu-user 7.2 passes the host's file through.
cat > "$work/probe.rs" << 'EOF'
fn main() {
    for (name, present) in [
        ("sse4.2", is_x86_feature_detected!("sse4.2")),
        ("avx", is_x86_feature_detected!("avx")),
        ("avx2", is_x86_feature_detected!("avx2")),
        ("fma", is_x86_feature_detected!("fma")),
        ("avx512f", is_x86_feature_detected!("avx512f")),
    ] {
        println!("{name}={present}");
    }
}
EOF
rustc -O --edition 2021 -o "$work/probe" "$work/probe.rs"
native_features=$("$work/probe" | tr '\n' ' ')
echo "  CPU features, host: $native_features"

# Checks that qemu's CPU model $1 reports each feature=value pair of the remaining arguments.
# Arguments: cpu model, feature=value...
expect_features() {
    local cpu=$1
    shift
    local features
    features=$(qemu-x86_64 -cpu "$cpu" "$work/probe" 2> /dev/null | tr '\n' ' ')
    echo "  CPU features, qemu -cpu $cpu: $features"
    for pair in "$@"; do
        if [[ " $features" != *" $pair "* ]]; then
            fail "qemu -cpu $cpu does not report $pair; choose another CPU model"
        fi
    done
}
expect_features "$qemu_cpu" avx2=false fma=false avx512f=false
expect_features "$qemu_avx2_cpu" avx2=true fma=true avx512f=false
if ((failures > 0)); then
    echo "$failures check(s) failed" >&2
    exit 1
fi

# Compresses an input under qemu at 2 threads and checks the bytes against the expected .nz
# file, then decompresses that file at 1 thread and checks that it gives the input back.
# Arguments: cpu model, label for the timings, input, model, expected .nz, output path prefix
qemu_round_trip() {
    local cpu=$1 label=$2 input=$3 model_file=$4 expected=$5 prefix=$6
    timed "qemu $cpu compress $label --threads 2" \
        qemu-x86_64 -cpu "$cpu" "$binary" compress "$input" \
        -o "$prefix.nz" --model "$model_file" --threads 2 -q
    same_bytes "$expected" "$prefix.nz"
    timed "qemu $cpu decompress $label --threads 1" \
        qemu-x86_64 -cpu "$cpu" "$binary" decompress "$expected" \
        -o "$prefix.bin" --model "$model_file" --threads 1 -q
    same_bytes "$input" "$prefix.bin"
}

# qemu translates every instruction, and the default model codes about 30 bytes/s under it
# (measured on a shared 2-core x86-64 host), so the emulated part codes small inputs only. With the
# shipped models: one input that covers every byte value and a 1 KB text slice (one stream
# each).
head -c "$qemu_input_bytes" "$work/in/text_20k.txt" > "$work/in/text_small.txt"
models=("$model")
if [[ -f $fast_model && $fast_model != "$model" ]]; then
    models+=("$fast_model")
fi
for cpu in "$qemu_cpu" "$qemu_avx2_cpu"; do
    out=$work/qemu-$cpu
    mkdir -p "$out"
    for model_file in "${models[@]}"; do
        tag=$(basename "$model_file" .safetensors)
        for name in all_bytes.bin text_small.txt; do
            expected=$work/native1/$name.$tag.nz
            "$binary" compress "$work/in/$name" -o "$expected" --model "$model_file" --threads 1 -q -f
            qemu_round_trip "$cpu" "$name ($tag)" "$work/in/$name" "$model_file" "$expected" "$out/$name.$tag"
        done
    done

    # With the test model: inputs of several streams, so that the decoder's matmuls have a
    # batch of 2 and 3 rows, checked against the .nz files that the Python reference wrote.
    tiny_model=$crate_dir/tests/data/tiny.safetensors
    for name in random_5000 text_10k; do
        qemu_round_trip "$cpu" "$name (test model)" "$crate_dir/tests/data/$name.bin" "$tiny_model" \
            "$crate_dir/tests/data/$name.nz" "$out/$name.tiny"
    done

    # With the retrieval test model: three streams, the second a copy of the first, which the
    # retriever predicts across streams.
    history_model=$crate_dir/tests/data/tiny_history.safetensors
    qemu_round_trip "$cpu" "repeat_8292 (retrieval model)" "$crate_dir/tests/data/repeat_8292.bin" \
        "$history_model" "$crate_dir/tests/data/repeat_8292.history.nz" "$out/repeat_8292.history"

    # With the index test model, which reads tiny_index.nzi from its folder: the history
    # match where there is one, else the longest match in the index.
    index_model=$crate_dir/tests/data/tiny_index.safetensors
    qemu_round_trip "$cpu" "repeat_8292 (index model)" "$crate_dir/tests/data/repeat_8292.bin" \
        "$index_model" "$crate_dir/tests/data/repeat_8292.index.nz" "$out/repeat_8292.index"
done

if ((failures > 0)); then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "OK: all outputs match (native --threads 1 and 2, qemu -cpu $qemu_cpu and $qemu_avx2_cpu)"
