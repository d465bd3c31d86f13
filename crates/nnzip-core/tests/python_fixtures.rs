//! Cross-implementation tests against files that the Python reference wrote.
//!
//! tests/make_fixtures.py regenerates tests/data: a tiny integer export, inputs `NAME.bin`
//! and their `.nz` files compressed by `nnzip.codec`, and the frequencies of the first steps
//! on the text input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nnzip_core::index::{self, Index};
use nnzip_core::{codec, container, members, Error, Model};
use safetensors::SafeTensors;

const FIXTURES: [&str; 5] = ["empty", "one_byte", "all_bytes", "random_5000", "text_10k"];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

fn model_path() -> PathBuf {
    data_dir().join("tiny.safetensors")
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        // Without this variable Candle reads /proc/cpuinfo on every matmul (see inference.rs).
        // Rust's own environment accesses are synchronized, and only Rust code reads it here.
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            std::env::set_var("RAYON_NUM_THREADS", "2");
        }
        Model::load(&model_path()).expect("the fixture model loads")
    })
}

fn read(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn with_threads<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool builds")
        .install(work)
}

#[test]
fn model_id_matches_python_metadata() {
    let bytes = read("tiny.safetensors");
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().as_ref().expect("the export has metadata");
    assert_eq!(hex(&model().id), metadata["model_id"]);
}

#[test]
fn step_frequencies_match_python() {
    let json: serde_json::Value = serde_json::from_slice(&read("step_freqs.json")).unwrap();
    let expected: Vec<Vec<u32>> = serde_json::from_value(json["freqs"].clone()).unwrap();
    let text = read("text_10k.bin");

    let mut ids = vec![nnzip_core::model::BOS];
    ids.extend(
        text[..expected.len() - 1]
            .iter()
            .map(|&byte| u32::from(byte)),
    );

    // One block of all positions, as the encoder runs it.
    let mut state = model().initial_state(1);
    let block = model().block(&ids, ids.len(), &mut state, None);
    for (position, row) in expected.iter().enumerate() {
        assert_eq!(
            &block[position * 256..(position + 1) * 256],
            row.as_slice(),
            "block position {position}"
        );
    }

    // Single steps, as the decoder runs them.
    let mut state = model().initial_state(1);
    for (position, row) in expected.iter().enumerate() {
        let step = model().step(&ids[position..position + 1], &mut state);
        assert_eq!(&step, row, "step position {position}");
    }
}

#[test]
fn decompress_python_files() {
    for name in FIXTURES {
        let decoded = codec::decompress(&read(&format!("{name}.nz")), model())
            .unwrap_or_else(|error| panic!("{name}.nz: {error}"));
        assert!(
            decoded == read(&format!("{name}.bin")),
            "{name}.nz decodes to other bytes"
        );
    }
}

#[test]
fn compress_matches_python_bytes() {
    for name in FIXTURES {
        let compressed = codec::compress(&read(&format!("{name}.bin")), model()).unwrap();
        assert!(
            compressed == read(&format!("{name}.nz")),
            "{name}.bin compresses to other bytes"
        );
    }
}

#[test]
fn thread_count_keeps_bytes() {
    for name in ["random_5000", "text_10k"] {
        let original = read(&format!("{name}.bin"));
        let one_thread = with_threads(1, || codec::compress(&original, model()).unwrap());
        let two_threads = with_threads(2, || codec::compress(&original, model()).unwrap());
        assert!(
            one_thread == two_threads,
            "{name}: 1 and 2 threads give other bytes"
        );

        let decoded = with_threads(2, || codec::decompress(&one_thread, model()).unwrap());
        assert!(decoded == original, "{name}: 2 threads decode other bytes");
    }
}

#[test]
fn header_names_model_id() {
    let blob = read("one_byte.nz");
    let (header, _) = container::unpack(&blob).unwrap();
    assert_eq!(header.model_id, model().short_id());
}

/// Replaces the model id in a container and rewrites the header CRC over it.
fn with_model_id(blob: &[u8], model_id: [u8; 16]) -> Vec<u8> {
    let mut changed = blob.to_vec();
    changed[8..24].copy_from_slice(&model_id);
    let streams = u32::from_le_bytes(changed[36..40].try_into().unwrap()) as usize;
    let table_end = 40 + 16 * streams;
    let crc = crc32fast::hash(&changed[..table_end]);
    changed[table_end..table_end + 4].copy_from_slice(&crc.to_le_bytes());
    changed
}

#[test]
fn other_model_id_rejected() {
    let blob = with_model_id(&read("all_bytes.nz"), *b"0123456789abcdef");
    let error = codec::decompress(&blob, model()).unwrap_err();
    assert!(matches!(error, Error::ModelMismatch(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "file was compressed with model 30313233343536373839616263646566, but the model used \
             for decoding is {}; pass --model with the matching model",
            hex(&model().short_id())
        )
    );
}

/// Decodes `blob`, which must fail with an error of the invalid-data kinds or succeed with
/// the original bytes. Returns whether it failed.
fn decode_hostile(blob: &[u8], original: &[u8], label: &str) -> bool {
    decode_hostile_with(model(), blob, original, label)
}

/// [`decode_hostile`] with another model.
fn decode_hostile_with(model: &Model, blob: &[u8], original: &[u8], label: &str) -> bool {
    match codec::decompress(blob, model) {
        Ok(decoded) => {
            assert!(
                decoded == original,
                "{label}: decoded other bytes without an error"
            );
            false
        }
        Err(error) => {
            let expected = error.is_invalid_data() || matches!(error, Error::ModelMismatch(_));
            assert!(expected, "{label}: unexpected error kind {error:?}");
            true
        }
    }
}

#[test]
fn truncations_rejected() {
    for name in FIXTURES {
        let blob = read(&format!("{name}.nz"));
        let original = read(&format!("{name}.bin"));
        for cut in 0..blob.len() {
            let failed =
                decode_hostile(&blob[..cut], &original, &format!("{name}.nz cut to {cut}"));
            assert!(failed, "{name}.nz cut to {cut} bytes decoded");
        }
    }
}

#[test]
fn header_bit_flips_rejected() {
    for name in FIXTURES {
        let blob = read(&format!("{name}.nz"));
        let original = read(&format!("{name}.bin"));
        let streams = u32::from_le_bytes(blob[36..40].try_into().unwrap()) as usize;
        let header_end = 44 + 16 * streams;
        for bit in 0..header_end * 8 {
            let mut flipped = blob.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let label = format!("{name}.nz bit {bit}");
            assert!(
                decode_hostile(&flipped, &original, &label),
                "{label} decoded"
            );
        }
    }
}

#[test]
fn payload_bit_flips_never_panic() {
    // Every bit of the 1-byte payload, and a spread of bits of the longer ones. A flip in a
    // payload decodes to the end before the CRC32 check, so each case costs a full decode.
    for (name, step) in [
        ("one_byte", 1),
        ("all_bytes", 7),
        ("random_5000", 2003),
        ("text_10k", 1009),
    ] {
        let blob = read(&format!("{name}.nz"));
        let original = read(&format!("{name}.bin"));
        let streams = u32::from_le_bytes(blob[36..40].try_into().unwrap()) as usize;
        let payload_start = 44 + 16 * streams;
        for bit in (payload_start * 8..blob.len() * 8).step_by(step) {
            let mut flipped = blob.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            decode_hostile(&flipped, &original, &format!("{name}.nz bit {bit}"));
        }
    }
}

#[test]
fn appended_bytes_rejected() {
    let blob = read("text_10k.nz");
    let original = read("text_10k.bin");
    for extra in [&b"\x00"[..], b"garbage", &[0xFF; 64]] {
        let mut longer = blob.clone();
        longer.extend_from_slice(extra);
        assert!(decode_hostile(&longer, &original, "appended bytes"));
    }
}

#[test]
fn model_file_corruption_rejected() {
    let bytes = read("tiny.safetensors");
    let path = Path::new("tiny-corrupt.safetensors");
    for cut in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        let error = Model::from_bytes(path, &bytes[..cut]).unwrap_err();
        assert!(matches!(error, Error::ModelLoad(_)), "cut {cut}: {error:?}");
    }
}

#[test]
fn more_streams_than_decode_group() {
    // Streams are independent, so repeating the 1-byte stream of one_byte.nz gives a valid
    // container of many streams, which the decoder splits into groups.
    let blob = read("one_byte.nz");
    let (header, payloads) = container::unpack(&blob).unwrap();
    let count = codec::DECODE_GROUP * 2 + 3;
    let original = vec![b'A'; count];
    let many = container::Header {
        model_id: header.model_id,
        original_length: count as u64,
        crc32: crc32fast::hash(&original),
        stream_lengths: vec![1; count],
        stream_sizes: vec![payloads[0].len() as u64; count],
        precision_bits: header.precision_bits,
        flags: 0,
        index_id: None,
    };
    let packed = container::pack(&many, &vec![payloads[0]; count]).unwrap();

    assert_eq!(codec::decompress(&packed, model()).unwrap(), original);
}

#[test]
fn first_error_does_not_depend_on_threads() {
    // text_10k has three streams. Truncating the payloads of streams 0 and 2 by different
    // amounts makes both fail, at different positions. Every thread count, and so every
    // grouping of streams, must report the error of the earliest (position, stream).
    let blob = read("text_10k.nz");
    let (header, payloads) = container::unpack(&blob).unwrap();
    assert_eq!(payloads.len(), 3);
    let cut: Vec<Vec<u8>> = payloads
        .iter()
        .enumerate()
        .map(|(index, payload)| match index {
            0 => payload[..payload.len() / 2].to_vec(),
            2 => payload[..payload.len() / 4].to_vec(),
            _ => payload.to_vec(),
        })
        .collect();
    let mut cut_header = header.clone();
    cut_header.stream_sizes = cut.iter().map(|payload| payload.len() as u64).collect();
    let damaged = container::pack(&cut_header, &cut).unwrap();

    let messages: Vec<String> = [1, 2, 3]
        .iter()
        .map(|&threads| {
            with_threads(threads, || codec::decompress(&damaged, model()))
                .expect_err("a truncated stream fails")
                .to_string()
        })
        .collect();
    assert_eq!(messages[0], messages[1]);
    assert_eq!(messages[0], messages[2]);
}

fn gated_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        model();
        Model::load(&data_dir().join("tiny_gated.safetensors")).expect("the gated fixture loads")
    })
}

#[test]
fn gated_mlp_model_matches_python_bytes() {
    let original = read("text_10k.bin");
    let expected = read("text_10k.gated.nz");
    assert_eq!(gated_model().config.mlp, nnzip_core::config::Mlp::Gated);
    for threads in [1, 2, 3] {
        let compressed = with_threads(threads, || {
            codec::compress(&original, gated_model()).unwrap()
        });
        assert!(
            compressed == expected,
            "{threads} threads: other bytes than Python's"
        );
        let decoded = with_threads(threads, || {
            codec::decompress(&expected, gated_model()).unwrap()
        });
        assert!(
            decoded == original,
            "{threads} threads: the decoded text differs"
        );
    }
}

fn history_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        model();
        Model::load(&data_dir().join("tiny_history.safetensors"))
            .expect("the retrieval fixture loads")
    })
}

#[test]
fn history_retrieval_model_matches_python_bytes() {
    assert_eq!(
        history_model().config.retrieval,
        nnzip_core::config::Retrieval::History
    );
    for name in ["text_10k", "repeat_8292"] {
        check_fixture_at_thread_counts(history_model(), name, "history");
    }
}

/// Checks that `model` compresses `NAME.bin` to exactly `NAME.TAG.nz` and decompresses that
/// file back, at 1, 2 and 3 threads.
fn check_fixture_at_thread_counts(model: &Model, name: &str, tag: &str) {
    let original = read(&format!("{name}.bin"));
    let expected = read(&format!("{name}.{tag}.nz"));
    for threads in [1, 2, 3] {
        let compressed = with_threads(threads, || codec::compress(&original, model).unwrap());
        assert!(
            compressed == expected,
            "{name}, {threads} threads: other bytes than Python's"
        );
        let decoded = with_threads(threads, || codec::decompress(&expected, model).unwrap());
        assert!(
            decoded == original,
            "{name}, {threads} threads: the decoded bytes differ"
        );
    }
}

#[test]
fn history_retrieval_codes_aligned_repeat_cheaply() {
    // The second stream repeats the first at the same positions, and the retriever reads the
    // first stream's byte of each position before it codes the second's.
    let original = read("repeat_8292.bin");
    let plain = codec::compress(&original, model()).unwrap();
    let history = read("repeat_8292.history.nz");
    assert!(
        history.len() < plain.len() * 9 / 10,
        "{} bytes with retrieval, {} without",
        history.len(),
        plain.len()
    );
}

fn index_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        model();
        Model::load(&data_dir().join("tiny_index.safetensors"))
            .expect("the index fixture loads with its index")
    })
}

const INDEX_FIXTURES: [&str; 2] = ["text_10k", "repeat_8292"];

#[test]
fn index_retrieval_model_matches_python_bytes() {
    assert_eq!(
        index_model().config.retrieval,
        nnzip_core::config::Retrieval::HistoryIndex
    );
    for name in INDEX_FIXTURES {
        check_fixture_at_thread_counts(index_model(), name, "index");
    }
}

#[test]
fn index_model_loads_the_named_index() {
    let loaded = index_model().index().expect("the model has its index");
    let file = read("tiny_index.nzi");
    assert_eq!(loaded.id, index::index_id(&file));
    assert_eq!(index::id_hex(&loaded.id), index_model().config.index_id);
    assert_eq!(index_model().config.index, "tiny_index.nzi");
    assert!(model().index().is_none());
    assert!(history_model().index().is_none());
}

#[test]
fn index_member_is_version_3_with_index_id() {
    for name in INDEX_FIXTURES {
        let blob = read(&format!("{name}.index.nz"));
        assert_eq!(blob[4], container::INDEX_VERSION, "{name}");
        let (header, _) = container::unpack(&blob).unwrap();
        assert_eq!(header.model_id, index_model().short_id(), "{name}");
        assert_eq!(
            header.index_id,
            Some(index_model().index().unwrap().id),
            "{name}"
        );
    }
}

#[test]
fn index_helps_text_from_its_corpus() {
    // The index corpus is the start of the book that text_10k is cut from, and contains it.
    let with_index = read("text_10k.index.nz").len();
    let history_only = read("text_10k.history.nz").len();
    assert!(
        with_index * 2 < history_only,
        "{with_index} bytes with the index, {history_only} with the history only"
    );
}

/// Rewrites the header of a member with `index_id` (version 3), or without one (version 1).
/// The stream table, payloads and model id stay, and the header CRC is recomputed.
fn with_index_id(blob: &[u8], index_id: Option<[u8; 16]>) -> Vec<u8> {
    let (header, payloads) = container::unpack(blob).unwrap();
    let changed = container::Header { index_id, ..header };
    container::pack(&changed, &payloads).unwrap()
}

#[test]
fn other_index_id_rejected() {
    let blob = with_index_id(&read("text_10k.index.nz"), Some(*b"0123456789abcdef"));
    let error = codec::decompress(&blob, index_model()).unwrap_err();
    assert!(matches!(error, Error::ModelMismatch(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "file was compressed with index 30313233343536373839616263646566, but model {} \
             reads index {}; the header is damaged",
            hex(&index_model().short_id()),
            index_model().config.index_id
        )
    );
}

#[test]
fn member_without_index_id_rejected() {
    let blob = with_index_id(&read("text_10k.index.nz"), None);
    assert_eq!(blob[4], container::MODEL_VERSION);
    let error = codec::decompress(&blob, index_model()).unwrap_err();
    assert!(matches!(error, Error::ModelMismatch(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "file was compressed with index none, but model {} reads index {}; the header is \
             damaged",
            hex(&index_model().short_id()),
            index_model().config.index_id
        )
    );
}

#[test]
fn index_member_rejected_by_model_without_index() {
    // The model id matches, so only the index check can fail.
    let indexed = with_index_id(&read("one_byte.nz"), Some(*b"0123456789abcdef"));
    let error = codec::decompress(&indexed, model()).unwrap_err();
    assert!(matches!(error, Error::ModelMismatch(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .ends_with("reads index none; the header is damaged"),
        "{error}"
    );
}

#[test]
fn index_member_damage_rejected() {
    let blob = read("text_10k.index.nz");
    let original = read("text_10k.bin");
    for cut in (0..blob.len()).step_by(97).chain(0..120) {
        let label = format!("text_10k.index.nz cut to {cut}");
        assert!(
            decode_hostile_with(index_model(), &blob[..cut], &original, &label),
            "{label} decoded"
        );
    }
    let streams = u32::from_le_bytes(blob[36..40].try_into().unwrap()) as usize;
    let header_end = 60 + 16 * streams;
    for bit in 0..header_end * 8 {
        let mut flipped = blob.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let label = format!("text_10k.index.nz bit {bit}");
        assert!(
            decode_hostile_with(index_model(), &flipped, &original, &label),
            "{label} decoded"
        );
    }
}

/// A temporary folder that is removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("nnzip-core-test-{}-{label}", std::process::id()));
        // A folder left by an earlier run of the same process id is stale.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the index fixture model into a new folder, with `index` as its index file if given,
/// and returns the folder and the model path.
fn model_copy(label: &str, index: Option<&[u8]>) -> (TempDir, PathBuf) {
    let folder = TempDir::new(label);
    let model_path = folder.0.join("tiny_index.safetensors");
    std::fs::write(&model_path, read("tiny_index.safetensors")).unwrap();
    if let Some(index) = index {
        std::fs::write(folder.0.join("tiny_index.nzi"), index).unwrap();
    }
    (folder, model_path)
}

#[test]
fn model_copy_with_its_index_loads() {
    let (_folder, path) = model_copy("with-index", Some(&read("tiny_index.nzi")));
    let loaded = Model::load(&path).unwrap();
    assert_eq!(loaded.id, index_model().id);
    assert_eq!(
        loaded.index().unwrap().id,
        index_model().index().unwrap().id
    );
}

#[test]
fn missing_index_rejected() {
    let (_folder, path) = model_copy("missing-index", None);
    let error = Model::load(&path).unwrap_err();
    assert!(matches!(error, Error::ModelLoad(_)), "{error:?}");
    let index_path = path.with_file_name("tiny_index.nzi");
    assert_eq!(
        error.to_string(),
        format!(
            "model {} needs the index tiny_index.nzi (id {}) next to it, but {} does not exist; \
             copy the index that shipped with the model there",
            path.display(),
            index_model().config.index_id,
            index_path.display()
        )
    );
}

#[test]
fn other_index_rejected() {
    let other = index::build(b"another corpus, another index").unwrap();
    let (_folder, path) = model_copy("other-index", Some(&other));
    let error = Model::load(&path).unwrap_err();
    assert!(matches!(error, Error::ModelLoad(_)), "{error:?}");
    let index_path = path.with_file_name("tiny_index.nzi");
    assert_eq!(
        error.to_string(),
        format!(
            "index {} has id {}, but model {} was trained with index id {}; \
             copy the index that shipped with the model there",
            index_path.display(),
            index::id_hex(&index::index_id(&other)),
            path.display(),
            index_model().config.index_id
        )
    );
}

#[test]
fn corrupted_index_rejected() {
    let file = read("tiny_index.nzi");
    let (_folder, path) = model_copy("corrupted-index", Some(&file[..file.len() - 4]));
    let error = Model::load(&path).unwrap_err();
    assert!(matches!(error, Error::ModelLoad(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("declares a corpus of 40000 bytes"),
        "{error}"
    );

    // An index with a valid layout whose suffix array is out of order.
    let mut unsorted = file.clone();
    let entries = index::HEADER_SIZE + 40_000;
    unsorted[entries..entries + 8].rotate_left(4);
    let error = Index::from_bytes(unsorted, "unsorted.nzi").unwrap_err();
    assert_eq!(
        error.to_string(),
        "unsorted.nzi: suffix array entry 1 is out of order; rebuild the index"
    );
}

#[test]
fn members_file_decodes_to_the_concatenation() {
    let blob = read("members.nz");
    let kinds: Vec<u8> = members::split_members(&blob)
        .unwrap()
        .iter()
        .map(|member| member.header.flags)
        .collect();
    assert_eq!(
        kinds,
        [0, container::FLAG_STORED_RAW, container::FLAG_STORED_ZSTD]
    );
    let decoded = members::decompress(&blob, Some(model()), &mut |_| Ok(())).unwrap();
    assert!(
        decoded == read("members.bin"),
        "members.nz decodes to other bytes"
    );
    assert_eq!(
        members::original_length(&blob).unwrap(),
        decoded.len() as u64
    );
}

#[test]
fn stored_members_need_no_model() {
    let blob = read("members.nz");
    let first = members::split_members(&blob).unwrap()[0].data.len();
    let decoded = members::decompress(&blob[first..], None, &mut |_| Ok(())).unwrap();
    assert!(
        decoded == read("members.bin")[10_000..],
        "the stored members decode to other bytes"
    );
}

/// The bad-input corpus of the Python tests: each file must fail with the message that
/// tests/bad-inputs/cases.json gives, as the Python command line prints it.
#[test]
fn bad_input_corpus_gives_python_messages() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/bad-inputs");
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let fast = Model::load(&models.join("nnzip-fast-v2.safetensors"))
        .expect("the shipped fast model loads");
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("cases.json")).unwrap()).unwrap();
    let cases = cases.as_object().expect("cases.json is an object");
    assert!(cases.len() >= 10);
    for (name, case) in cases {
        let blob = std::fs::read(folder.join(format!("{name}.nz"))).unwrap();
        let error = members::decompress(&blob, Some(&fast), &mut |_| Ok(())).unwrap_err();
        let expected = case["error"].as_str().unwrap();
        assert!(
            error.to_string().starts_with(expected),
            "{name}: {error} (expected {expected})"
        );
    }
}
