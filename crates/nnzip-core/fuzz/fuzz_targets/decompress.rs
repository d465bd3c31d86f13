//! Fuzzes the `.nz` container parser and the decoder with the test model.
//!
//! Every input must give `Ok` or an `Err`, never a panic, an abort or a hang. Each input is
//! decoded as given and, where the stream table fits, once more with the test model's id and
//! a recomputed header CRC. Without that second run almost every mutated header would stop
//! at the model id or CRC check, and the rules and the decoder behind it would go untested.
//!
//! NOTE: The test model reads no index, so version 3 members stop at the index id check of
//! the decoder, and the index retriever is not fuzzed here.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nnzip_core::container::{self, FIXED_HEADER_SIZE, MODEL_ID_SIZE};
use nnzip_core::{codec, Error, Model};

/// The test model, built into the binary so the target runs from any directory.
const MODEL_BYTES: &[u8] = include_bytes!("../../tests/data/tiny.safetensors");

/// Limits on the inputs that are decoded, so that one input takes about a second at most.
/// Larger ones are only parsed. The decoder runs one model step per position of the longest
/// stream, which takes about 0.5 ms in the instrumented build (measured with the test model on
/// a 2-core x86-64 host). A header may declare up to 1423 bytes per payload byte, so without
/// limits a 5 KB input could take minutes.
const MAX_DECODED_STREAM_LENGTH: u64 = 1024;
const MAX_DECODED_LENGTH: u64 = 16 * 1024;

/// Offset of the format version in the fixed header.
const VERSION_OFFSET: usize = 4;
/// Offset of the model id in the fixed header.
const MODEL_ID_OFFSET: usize = 8;
/// Offset of the stream count (u32) in the fixed header.
const STREAM_COUNT_OFFSET: usize = 36;
/// Bytes per stream table entry and of the header CRC.
const STREAM_ENTRY_SIZE: usize = 16;
const HEADER_CRC_SIZE: usize = 4;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        // One thread keeps runs reproducible and fast. Candle reads this variable on every
        // matmul and otherwise parses /proc/cpuinfo each time.
        std::env::set_var("RAYON_NUM_THREADS", "1");
        Model::from_bytes(Path::new("tiny.safetensors"), MODEL_BYTES).expect("the test model loads")
    })
}

/// Decodes `blob` and checks that a successful result is consistent with its header.
fn decode(blob: &[u8], model: &Model) {
    let header = match container::unpack(blob) {
        Ok((header, _)) => header,
        Err(error) => {
            assert!(error.is_invalid_data(), "unexpected error kind: {error:?}");
            assert!(codec::decompress(blob, model).is_err());
            return;
        }
    };
    let longest_stream = header.stream_lengths.iter().copied().max().unwrap_or(0);
    if header.original_length > MAX_DECODED_LENGTH || longest_stream > MAX_DECODED_STREAM_LENGTH {
        return;
    }

    match codec::decompress(blob, model) {
        Ok(data) => {
            assert_eq!(data.len() as u64, header.original_length);
            assert_eq!(crc32fast::hash(&data), header.crc32);
        }
        Err(error) => assert!(
            error.is_invalid_data() || matches!(error, Error::ModelMismatch(_)),
            "unexpected error kind: {error:?}"
        ),
    }
}

/// Returns `blob` with the test model's id and a header CRC that matches the header and the
/// stream table, or `None` if the data is too short to contain them.
fn with_valid_header_crc(blob: &[u8], model: &Model) -> Option<Vec<u8>> {
    if blob.len() < FIXED_HEADER_SIZE {
        return None;
    }
    let count_bytes = &blob[STREAM_COUNT_OFFSET..FIXED_HEADER_SIZE];
    let stream_count = u32::from_le_bytes(count_bytes.try_into().ok()?) as usize;
    // Version 3 members put the index id before the stream table.
    let table_end = stream_count
        .checked_mul(STREAM_ENTRY_SIZE)?
        .checked_add(container::table_start(blob[VERSION_OFFSET]))?;
    if table_end.checked_add(HEADER_CRC_SIZE)? > blob.len() {
        return None;
    }

    let mut patched = blob.to_vec();
    patched[MODEL_ID_OFFSET..MODEL_ID_OFFSET + MODEL_ID_SIZE].copy_from_slice(&model.short_id());
    let crc = crc32fast::hash(&patched[..table_end]);
    patched[table_end..table_end + HEADER_CRC_SIZE].copy_from_slice(&crc.to_le_bytes());
    Some(patched)
}

fuzz_target!(|data: &[u8]| {
    let model = model();
    decode(data, model);
    if let Some(patched) = with_valid_header_crc(data, model) {
        if patched != data {
            decode(&patched, model);
        }
    }
});
