//! Compress and decompress bytes with an integer model, a range coder per stream and the
//! `.nz` container, as `nnzip/codec.py` does.
//!
//! The input is cut into independent streams (see [`stream_lengths`]). All streams advance
//! together, so each model call is one batch. The encoder has every byte in advance and runs blocks of
//! about [`ENCODE_ROWS`] rows (streams x positions); the decoder runs one position per call. Both get the same
//! frequencies, because a block gives exactly the integers of single steps.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::coder::{RangeDecoder, RangeEncoder, ALPHABET_SIZE, TOTAL};
use crate::config::Retrieval;
use crate::container::{self, model_id_hex, Header, INDEX_ID_SIZE, PRECISION_BITS};
use crate::error::{Error, Result};
use crate::index::id_hex;
use crate::model::{Model, BOS};
use crate::retrieval::{self, Retriever};

/// Streams coded side by side; more streams mean bigger batches per step.
pub const MAX_STREAMS: usize = 64;

/// Shorter streams would spend too much of each one warming up the state.
pub const MIN_STREAM_LENGTH: usize = 4096;

/// Rows (streams x positions) per encoder block. Bigger blocks make bigger matmuls, but past
/// a few hundred rows the activations drop out of the cache and coding gets slower. Measured
/// on 1 thread with 64 streams: 256 rows beat 128, 512 and 1024 with both shipped models, and
/// 256 positions x 64 streams ran at 60% of the speed of 8 x 64.
pub const ENCODE_ROWS: usize = 256;

/// Streams that the decoder advances together; as many as the encoder writes.
pub const DECODE_GROUP: usize = MAX_STREAMS;

/// Splits `total` bytes into stream lengths: equal streams of
/// `max(MIN_STREAM_LENGTH, ceil(total / MAX_STREAMS))` bytes, the last one shorter.
///
/// This is the encoder's policy. The decoder reads the lengths from the container, so the
/// policy can change without a new format version, but the bytes of a `.nz` file depend on it.
pub fn stream_lengths(total: usize) -> Vec<usize> {
    if total == 0 {
        return Vec::new();
    }
    let length = MIN_STREAM_LENGTH.max(total.div_ceil(MAX_STREAMS));
    let mut lengths = vec![length; total / length];
    let rest = total % length;
    if rest > 0 {
        lengths.push(rest);
    }
    lengths
}

/// A callback that receives the number of input bytes coded since its previous call. An error
/// return stops the work, and the codec function returns that error.
pub type Progress<'a> = &'a mut (dyn FnMut(usize) -> Result<()> + Send);

/// Decoder positions between two progress calls.
const DECODE_PROGRESS_EVERY: usize = 64;

/// Returns the `.nz` container of `data` coded with `model`.
///
/// The work runs on the current rayon thread pool, and the output does not depend on its
/// thread count.
pub fn compress(data: &[u8], model: &Model) -> Result<Vec<u8>> {
    compress_with_progress(data, model, &mut |_| Ok(()))
}

/// [`compress`] that reports progress after each block and stops when `progress` fails.
pub fn compress_with_progress(data: &[u8], model: &Model, progress: Progress) -> Result<Vec<u8>> {
    in_worker(|| compress_streams(data, model, progress))
}

/// Runs `work` on a thread of the current rayon pool.
///
/// A parallel iterator started from a thread outside the pool hands its work to the pool and
/// sleeps until it is done, even when the work is one small task. The decoder starts several
/// such iterators per byte, and that hand-off costs more than the tiny model's arithmetic.
/// Started from a pool thread, a single task runs in place.
fn in_worker<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    rayon::scope(|_| work())
}

fn compress_streams(data: &[u8], model: &Model, progress: Progress) -> Result<Vec<u8>> {
    let lengths = stream_lengths(data.len());
    let mut streams = Vec::with_capacity(lengths.len());
    let mut offset = 0;
    for &length in &lengths {
        streams.push(&data[offset..offset + length]);
        offset += length;
    }

    // The retriever reads the streams in coding order, and the encoder has every byte, so
    // all codes are known before the model runs.
    let kind = model.config.retrieval;
    let codes = match kind {
        Retrieval::None => None,
        Retrieval::History | Retrieval::HistoryIndex => {
            Some(retrieval::stream_codes(kind, &streams, model.index())?)
        }
    };

    let progress = SharedProgress::new(progress);
    let groups = thread_groups(streams.len());
    let results = run_groups(&groups, |range| {
        let group_codes = codes.as_ref().map(|codes| &codes[range.clone()]);
        encode_group(model, &streams[range], group_codes, &progress)
    });
    let mut payloads = Vec::with_capacity(streams.len());
    for result in results {
        payloads.extend(result?);
    }
    progress.check()?;

    let header = Header {
        model_id: model.short_id(),
        original_length: data.len() as u64,
        crc32: crc32fast::hash(data),
        stream_lengths: lengths.iter().map(|&length| length as u64).collect(),
        stream_sizes: payloads
            .iter()
            .map(|payload| payload.len() as u64)
            .collect(),
        precision_bits: PRECISION_BITS,
        flags: 0,
        index_id: model.index().map(|index| index.id),
    };
    container::pack(&header, &payloads)
}

/// Encodes streams that advance together, in blocks of about [`ENCODE_ROWS`] rows, and
/// returns their range-coded payloads.
fn encode_group(
    model: &Model,
    streams: &[&[u8]],
    codes: Option<&[Vec<u32>]>,
    progress: &SharedProgress,
) -> Result<Vec<Vec<u8>>> {
    let lengths: Vec<usize> = streams.iter().map(|stream| stream.len()).collect();
    let mut encoders: Vec<RangeEncoder> = streams.iter().map(|_| RangeEncoder::new()).collect();
    let mut state = model.initial_state(streams.len());
    let longest = lengths.iter().copied().max().unwrap_or(0);

    let block = (ENCODE_ROWS / streams.len().max(1)).max(1);
    for start in (0..longest).step_by(block) {
        let width = block.min(longest - start);
        let ids = block_inputs(streams, start, width);
        let block_codes = codes.map(|codes| block_codes(codes, start, width));
        let freqs = model.block(&ids, width, &mut state, block_codes.as_deref());

        for ((encoder, stream), block_freqs) in encoders
            .iter_mut()
            .zip(streams)
            .zip(freqs.chunks(width * ALPHABET_SIZE))
        {
            let end = stream.len().clamp(start, start + width);
            for (position, row) in (start..end).zip(block_freqs.chunks_exact(ALPHABET_SIZE)) {
                let symbol = usize::from(stream[position]);
                let cum: u32 = row[..symbol].iter().sum();
                encoder.encode(cum, row[symbol]);
            }
        }
        progress.report(coded_bytes(&lengths, start, width))?;
    }
    Ok(encoders.into_iter().map(RangeEncoder::finish).collect())
}

/// Splits `count` streams into contiguous groups of near-equal size, one per thread of the
/// current rayon pool and at most one per stream.
fn thread_groups(count: usize) -> Vec<Range<usize>> {
    let groups = rayon::current_num_threads().clamp(1, count.max(1));
    (0..groups)
        .map(|group| group * count / groups..(group + 1) * count / groups)
        .collect()
}

/// Runs `work` on each group of streams and returns the results in group order.
///
/// Each group runs on its own thread with a single-threaded rayon pool, so the groups share
/// only the progress lock and do not synchronize per step. Per-step synchronization costs more
/// than the small models' arithmetic between two steps (measured: 2 threads decoded slower
/// than 1). A single group runs in place. Streams are independent, so grouping changes no byte.
fn run_groups<T: Send>(groups: &[Range<usize>], work: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    if groups.len() <= 1 {
        return groups.iter().map(|range| work(range.clone())).collect();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .iter()
            .map(|range| {
                let work = &work;
                scope.spawn(
                    move || match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                        Ok(pool) => pool.install(|| work(range.clone())),
                        // Without a pool of its own the group still runs, on the global pool.
                        Err(_) => work(range.clone()),
                    },
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// A progress callback shared by the stream groups. After the first failed call every
/// group's next report fails too, so all of them stop, and the first error is kept.
struct SharedProgress<'a> {
    callback: Mutex<Progress<'a>>,
    failure: Mutex<Option<Error>>,
    failed: AtomicBool,
}

impl<'a> SharedProgress<'a> {
    fn new(callback: Progress<'a>) -> Self {
        SharedProgress {
            callback: Mutex::new(callback),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
        }
    }

    fn report(&self, coded: usize) -> Result<()> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(Error::Cancelled(
                "stopped by another thread's progress report".to_string(),
            ));
        }
        let mut callback = self
            .callback
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let outcome = (*callback)(coded);
        if let Err(error) = outcome {
            self.failed.store(true, Ordering::Relaxed);
            *self
                .failure
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error);
            return Err(Error::Cancelled("stopped by a progress report".to_string()));
        }
        Ok(())
    }

    /// Returns the error of the first failed report, if any.
    fn check(&self) -> Result<()> {
        match self
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Bytes of the streams at positions `start .. start + width`.
fn coded_bytes(lengths: &[usize], start: usize, width: usize) -> usize {
    lengths
        .iter()
        .map(|&length| length.clamp(start, start + width) - start)
        .sum()
}

/// Model inputs of positions `start .. start + width` per stream, (streams, width) row-major:
/// BOS at position 0, else the byte before. Positions past a stream's end get 0, and their
/// outputs are not used.
fn block_inputs(streams: &[&[u8]], start: usize, width: usize) -> Vec<u32> {
    let mut ids = Vec::with_capacity(streams.len() * width);
    for stream in streams {
        for position in start..start + width {
            ids.push(previous_id(stream, position));
        }
    }
    ids
}

/// Retrieval codes of positions `start .. start + width` per stream, laid out as
/// [`block_inputs`]; 0 past a stream's end.
fn block_codes(codes: &[Vec<u32>], start: usize, width: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(codes.len() * width);
    for stream in codes {
        for position in start..start + width {
            out.push(stream.get(position).copied().unwrap_or(0));
        }
    }
    out
}

/// Returns the model input at `position` of a stream: BOS at 0, else the byte at `position - 1`, or 0
/// past the stream's end.
fn previous_id(stream: &[u8], position: usize) -> u32 {
    if position == 0 {
        return BOS;
    }
    stream.get(position - 1).map_or(0, |&byte| u32::from(byte))
}

/// Returns `ModelMismatch` unless the header names `model` and the model's index.
pub fn check_model(header: &Header, model: &Model) -> Result<()> {
    let expected = model.short_id();
    if header.model_id != expected {
        return Err(Error::ModelMismatch(format!(
            "file was compressed with model {}, but the model used for decoding is {}; \
             pass --model with the matching model",
            model_id_hex(&header.model_id),
            model_id_hex(&expected)
        )));
    }
    let index_id = model.index().map(|index| index.id);
    if header.index_id != index_id {
        // The model id covers the index id, so this is a damaged header or a model without
        // its index.
        let hex_or_none =
            |id: Option<[u8; INDEX_ID_SIZE]>| id.as_ref().map_or("none".to_owned(), id_hex);
        return Err(Error::ModelMismatch(format!(
            "file was compressed with index {}, but model {} reads index {}; the header is damaged",
            hex_or_none(header.index_id),
            model_id_hex(&expected),
            hex_or_none(index_id)
        )));
    }
    Ok(())
}

/// Returns the original bytes of a `.nz` container.
///
/// Returns `InvalidData`, `UnsupportedVersion` or `Checksum` for bad input and
/// `ModelMismatch` for a file written with another model.
pub fn decompress(blob: &[u8], model: &Model) -> Result<Vec<u8>> {
    decompress_with_progress(blob, model, &mut |_| Ok(()))
}

/// [`decompress`] that reports progress every few positions and stops when `progress` fails.
pub fn decompress_with_progress(blob: &[u8], model: &Model, progress: Progress) -> Result<Vec<u8>> {
    in_worker(|| decompress_streams(blob, model, progress))
}

fn decompress_streams(blob: &[u8], model: &Model, progress: Progress) -> Result<Vec<u8>> {
    let (header, payloads) = container::unpack(blob)?;
    check_model(&header, model)?;

    // Every length is at most 1423 times its payload size plus one (container rule 11), so
    // the output allocations are bounded by the size of `blob`.
    let lengths: Vec<usize> = header
        .stream_lengths
        .iter()
        .map(|&length| length as usize)
        .collect();

    // The model state of a stream can take megabytes, and a header can list up to
    // (file size - 44) / 16 streams, so a crafted file could ask for more memory than the
    // machine has. Decoding at most DECODE_GROUP streams together bounds the state, and gives
    // the same bytes because streams are independent.
    // NOTE: Files with more than DECODE_GROUP streams (which the encoder never writes) can
    // report a different one of several errors than the Python reference, which advances all
    // streams together.
    let progress = SharedProgress::new(progress);
    let mut outputs: Vec<Vec<u8>> = Vec::with_capacity(lengths.len());
    for (chunk, (chunk_lengths, chunk_payloads)) in lengths
        .chunks(DECODE_GROUP)
        .zip(payloads.chunks(DECODE_GROUP))
        .enumerate()
    {
        // With retrieval, a stream's codes depend on the bytes of the streams before it at
        // the same position, so the chunk decodes as one group.
        // NOTE: That leaves the second thread idle when a model with retrieval decodes. The
        // network's forward pass could still run in parallel with a barrier per position.
        let groups = match model.config.retrieval {
            Retrieval::None => thread_groups(chunk_lengths.len()),
            Retrieval::History | Retrieval::HistoryIndex => {
                std::iter::once(0..chunk_lengths.len()).collect()
            }
        };
        let results = run_groups(&groups, |range| {
            let base = chunk * DECODE_GROUP + range.start;
            decode_group(
                model,
                &chunk_payloads[range.clone()],
                &chunk_lengths[range],
                base,
                &progress,
            )
        });
        progress.check()?;
        // Each group stops at its first error. The earliest (position, stream) among them is
        // the error that the Python reference finds, because it decodes all streams in lockstep.
        let mut first_error: Option<StreamError> = None;
        for result in results {
            match result {
                Ok(group_outputs) => outputs.extend(group_outputs),
                Err(error) => {
                    if first_error
                        .as_ref()
                        .is_none_or(|first| error.key() < first.key())
                    {
                        first_error = Some(error);
                    }
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error.error);
        }
    }

    let data = outputs.concat();
    let crc = crc32fast::hash(&data);
    if crc != header.crc32 {
        return Err(Error::Checksum(format!(
            "checksum mismatch: stored CRC32 {:08x}, decoded {crc:08x}; the file is corrupted",
            header.crc32
        )));
    }
    if data.len() as u64 != header.original_length {
        return Err(Error::InvalidData(format!(
            "decoded {} bytes, but the header declares {}",
            data.len(),
            header.original_length
        )));
    }
    Ok(data)
}

/// A decoding error with the position and the stream (its index in the file) where it
/// happened; the end-of-stream checks come after every position.
struct StreamError {
    position: usize,
    stream: usize,
    error: Error,
}

impl StreamError {
    fn key(&self) -> (usize, usize) {
        (self.position, self.stream)
    }
}

/// Decodes streams that advance together, one model step per position, and returns their
/// bytes. `first_stream` is the file's index of the first one, for error ordering.
///
/// Streams are handled position by position and in table order, as in the Python reference,
/// so the first error found is the same one.
fn decode_group(
    model: &Model,
    payloads: &[&[u8]],
    lengths: &[usize],
    first_stream: usize,
    progress: &SharedProgress,
) -> std::result::Result<Vec<Vec<u8>>, StreamError> {
    let mut decoders: Vec<RangeDecoder> = payloads
        .iter()
        .map(|payload| RangeDecoder::new(payload))
        .collect();
    let mut outputs: Vec<Vec<u8>> = lengths.iter().map(|&length| vec![0u8; length]).collect();
    let mut state = model.initial_state(outputs.len());
    let longest = lengths.iter().copied().max().unwrap_or(0);
    let at = |position: usize, index: usize| {
        move |error: Error| StreamError {
            position,
            stream: first_stream + index,
            error,
        }
    };

    let mut retriever =
        Retriever::new(model.config.retrieval, lengths, model.index()).map_err(at(0, 0))?;
    let mut ids = vec![0u32; outputs.len()];
    let mut row = [0u32; ALPHABET_SIZE];
    for position in 0..longest {
        for (id, output) in ids.iter_mut().zip(outputs.iter()) {
            *id = previous_id(output, position);
        }
        let output = model.block_logits(&ids, 1, &mut state);

        for (index, ((decoder, stream), logits)) in decoders
            .iter_mut()
            .zip(outputs.iter_mut())
            .zip(output.logits.chunks_exact(ALPHABET_SIZE))
            .enumerate()
        {
            if position >= stream.len() {
                continue;
            }
            // A stream's code depends on every byte decoded before it, this position's too.
            let code = retriever.as_mut().map_or(0, |r| r.feature(index));
            let gate = output.gates.as_ref().map(|gates| gates[index]);
            model.row_frequencies(logits, gate, code, &mut row);
            let target = decoder.decode_target().map_err(at(position, index))?;
            let (symbol, cum) = find_symbol(&row, target);
            decoder
                .consume(cum, row[symbol])
                .map_err(at(position, index))?;
            stream[position] = symbol as u8;
            if let Some(retriever) = retriever.as_mut() {
                retriever.push(index, symbol as u8);
            }
        }
        if (position + 1) % DECODE_PROGRESS_EVERY == 0 || position + 1 == longest {
            let start = position / DECODE_PROGRESS_EVERY * DECODE_PROGRESS_EVERY;
            progress
                .report(coded_bytes(lengths, start, position + 1 - start))
                .map_err(at(position, 0))?;
        }
    }

    for (index, decoder) in decoders.iter().enumerate() {
        decoder.verify_end().map_err(at(usize::MAX, index))?;
    }
    Ok(outputs)
}

/// Returns the symbol whose subrange of `row` contains `target`, with its cumulative
/// frequency. `target < TOTAL` and the row sums to TOTAL, so the symbol exists.
fn find_symbol(row: &[u32], target: u32) -> (usize, u32) {
    debug_assert!(target < TOTAL);
    let mut cum = 0;
    for (symbol, &freq) in row.iter().enumerate() {
        if target < cum + freq {
            return (symbol, cum);
        }
        cum += freq;
    }
    unreachable!("frequency rows sum to {TOTAL}, and the target {target} is below it")
}

/// Returns the original length that a `.nz` container declares, after validating its header.
pub fn original_length(blob: &[u8]) -> Result<u64> {
    Ok(container::unpack(blob)?.0.original_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_lengths_follow_python_policy() {
        assert_eq!(stream_lengths(0), Vec::<usize>::new());
        assert_eq!(stream_lengths(1), vec![1]);
        assert_eq!(stream_lengths(4096), vec![4096]);
        assert_eq!(stream_lengths(5000), vec![4096, 904]);
        assert_eq!(stream_lengths(10_000), vec![4096, 4096, 1808]);
        assert_eq!(stream_lengths(64 * 4096), vec![4096; 64]);
        // ceil(262145 / 64) = 4097, so 63 full streams and a last one of 4034 bytes.
        let mut expected = vec![4097; 63];
        expected.push(262_145 - 63 * 4097);
        assert_eq!(stream_lengths(64 * 4096 + 1), expected);
        assert_eq!(stream_lengths(1_000_000), vec![15_625; 64]);
    }

    #[test]
    fn find_symbol_covers_each_subrange() {
        let mut row = vec![1u32; ALPHABET_SIZE];
        row[10] = TOTAL - 255;
        assert_eq!(find_symbol(&row, 0), (0, 0));
        assert_eq!(find_symbol(&row, 9), (9, 9));
        assert_eq!(find_symbol(&row, 10), (10, 10));
        assert_eq!(find_symbol(&row, 10 + TOTAL - 256), (10, 10));
        assert_eq!(find_symbol(&row, TOTAL - 1), (255, TOTAL - 1));
    }

    #[test]
    fn previous_ids_start_with_bos() {
        let stream = [7u8, 8, 9];
        assert_eq!(previous_id(&stream, 0), BOS);
        assert_eq!(previous_id(&stream, 1), 7);
        assert_eq!(previous_id(&stream, 3), 9);
        assert_eq!(previous_id(&stream, 4), 0);
    }
}
