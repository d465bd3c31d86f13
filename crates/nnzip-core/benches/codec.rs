//! Compression and decompression throughput of each shipped model (fast, then the default
//! small) on 64 KiB of validation text.
//!
//! Run with `cargo bench --bench codec` from crates/nnzip-core (about 5 minutes on a shared
//! 2-core x86-64 machine), or `cargo bench --bench codec -- --quick` for 3 calls per benchmark
//! instead of 11 (about 1.5 minutes). The input is bytes 3,200,000..3,265,536 of `enwik8-head`
//! in the shared data folder beside or inside the checkout, the start of the validation part.
//! Without that file the benchmarks are skipped with a message.
//!
//! Each thread count runs on its own rayon pool, with RAYON_NUM_THREADS set to the same count,
//! as the `nnzip-core --threads` option does: Candle 0.11 reads the variable on every matmul
//! to choose between its single-threaded and its rayon kernels.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use nnzip_core::{codec, Model};

const VALIDATION_START: usize = 3_200_000;
const INPUT_BYTES: usize = 64 * 1024;
const THREAD_COUNTS: [usize; 2] = [1, 2];
const MODELS: [&str; 2] = ["nnzip-fast-v2", "nnzip-small-v3"];

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// Returns the input bytes, or `None` if `enwik8-head` is missing or too short.
fn read_input() -> Option<Vec<u8>> {
    let root = repository_root();
    let candidates = [
        root.join("..")
            .join("shared")
            .join("data")
            .join("enwik8-head"),
        root.join("shared").join("data").join("enwik8-head"),
    ];
    let path = candidates.iter().find(|path| path.is_file())?;
    let bytes = std::fs::read(path).ok()?;
    bytes
        .get(VALIDATION_START..VALIDATION_START + INPUT_BYTES)
        .map(<[u8]>::to_vec)
}

fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool builds")
}

fn bench_codec(c: &mut Criterion) {
    let Some(input) = read_input() else {
        eprintln!(
            "skipping the codec benchmarks: shared/data/enwik8-head (at least {} bytes) not found \
             beside or inside the checkout",
            VALIDATION_START + INPUT_BYTES
        );
        return;
    };
    for name in MODELS {
        bench_model(c, name, &input);
    }
}

fn bench_model(c: &mut Criterion, name: &str, input: &[u8]) {
    let model_path = repository_root()
        .join("models")
        .join(format!("{name}.safetensors"));
    let model = Model::load(&model_path)
        .unwrap_or_else(|error| panic!("cannot load {}: {error}", model_path.display()));

    // The output does not depend on the thread count, so one blob serves both.
    let blob = codec::compress(input, &model).expect("compression works");
    println!(
        "{name}: {} -> {} bytes, {:.4} bits per byte",
        input.len(),
        blob.len(),
        8.0 * blob.len() as f64 / input.len() as f64
    );

    for threads in THREAD_COUNTS {
        // Set between benchmarks, while no codec work runs. Rust's environment functions take
        // a lock, and only Rust code reads this variable here.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        let pool = thread_pool(threads);

        // One call takes seconds, so each sample is one call and the sample count is the
        // minimum that criterion accepts: 11 calls per benchmark with the warm-up. With
        // `-- --quick`, criterion stops after 3 calls once they exceed the measurement time.
        let mut group = c.benchmark_group(format!("{name}_64k_{threads}_threads"));
        group.sample_size(10);
        group.sampling_mode(SamplingMode::Flat);
        group.warm_up_time(Duration::from_millis(1));
        group.measurement_time(Duration::from_secs(10));
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function("compress", |b| {
            b.iter(|| {
                pool.install(|| codec::compress(black_box(input), &model))
                    .unwrap()
            })
        });
        group.bench_function("decompress", |b| {
            b.iter(|| {
                pool.install(|| codec::decompress(black_box(&blob), &model))
                    .unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
