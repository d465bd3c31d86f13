#!/usr/bin/env bash
# Measures bits per byte, throughput and peak RSS of the nnzip-core binary on the full
# validation part: bytes 3,200,000..3,600,000 of enwik8-head (400,000 bytes), with each shipped
# model (fast, the default small, then small with the enwik8-1m index) and --threads 1 and 2.
# Every decoded file must equal the input.
#
# Usage: crates/nnzip-core/benches/validation_rss.sh
#
# Needs GNU time (/usr/bin/time, Debian package `time`) and enwik8-head in the shared data
# folder beside or inside the checkout. The KB/s figures are the binary's own report, which
# excludes loading the model. The wall and CPU times of /usr/bin/time include it. On a shared
# machine the CPU time (user + system) is the figure that other processes disturb least.

set -euo pipefail

crate_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo_root=$(cd "$crate_dir/../.." && pwd)
models=("$repo_root/models/nnzip-fast-v2.safetensors" "$repo_root/models/nnzip-small-v3.safetensors"
    "$repo_root/models/nnzip-small-index-v1.safetensors")
binary=$crate_dir/target/release/nnzip-core
start=3200000
length=400000

source_file=$repo_root/../shared/data/enwik8-head
if [[ ! -f $source_file ]]; then
    source_file=$repo_root/shared/data/enwik8-head
fi
if [[ ! -f $source_file ]]; then
    echo "error: enwik8-head not found in shared/data beside or inside $repo_root" >&2
    exit 1
fi
if [[ ! -x /usr/bin/time ]]; then
    echo "error: /usr/bin/time not found; install the Debian package time" >&2
    exit 1
fi

cargo build --release --quiet --manifest-path "$crate_dir/Cargo.toml"

work=$(mktemp -d "${TMPDIR:-/tmp}/nnzip-validation.XXXXXX")
trap 'rm -rf "$work"' EXIT
input=$work/validation.bin
tail -c +$((start + 1)) "$source_file" | head -c "$length" > "$input"
if [[ $(stat -c %s "$input") != "$length" ]]; then
    echo "error: $source_file has fewer than $((start + length)) bytes" >&2
    exit 1
fi

# Runs one command under GNU time and prints the binary's report, wall time and peak RSS.
# Arguments: label, command...
measure() {
    local label=$1
    shift
    /usr/bin/time -v -o "$work/time.txt" "$@" 2> "$work/report.txt"
    local report wall user system rss_kb
    report=$(grep '^nnzip-core:' "$work/report.txt" | sed 's/^nnzip-core: [^:]*: //')
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt")
    user=$(sed -n 's/.*User time (seconds): //p' "$work/time.txt")
    system=$(sed -n 's/.*System time (seconds): //p' "$work/time.txt")
    rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
    printf '%-22s %s | wall %s, CPU %.1f s | peak RSS %d MiB\n' \
        "$label" "$report" "$wall" "$(awk -v u="$user" -v s="$system" 'BEGIN { print u + s }')" \
        $((rss_kb / 1024))
}

for model in "${models[@]}"; do
    echo "== $(basename "$model" .safetensors)"
    for threads in 1 2; do
        measure "compress --threads $threads" \
            "$binary" compress "$input" -o "$work/validation.nz" --model "$model" \
            --threads "$threads" -f
        measure "decompress --threads $threads" \
            "$binary" decompress "$work/validation.nz" -o "$work/decoded.bin" --model "$model" \
            --threads "$threads" -f
        if ! cmp -s "$input" "$work/decoded.bin"; then
            echo "FAIL: the decoded file differs from the input (--threads $threads)" >&2
            exit 1
        fi
    done
done
