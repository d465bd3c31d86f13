//! The `.nz` container: members of a fixed header, a stream table, a header CRC and payloads.
//!
//! A member is model-coded (version 1), stored, raw or as a zstd frame (version 2), or
//! model-coded with a model that reads an external index, which the member names by id
//! (version 3). `docs/FORMAT.md` specifies the layout and every rule that [`unpack_member`] checks, in the
//! order it checks them. All integers are little-endian. Messages match `nnzip/container.py`.

use crate::error::{Error, Result};
use crate::pyrepr::bytes_repr;

pub const MAGIC: [u8; 4] = *b"NNZ\x1a";
/// The newest version this reader decodes.
pub const FORMAT_VERSION: u8 = 3;
/// The version of model-coded members.
pub const MODEL_VERSION: u8 = 1;
/// The version that added stored members.
pub const STORED_VERSION: u8 = 2;
/// The version of model-coded members that name an index, in the 16 bytes after the fixed
/// header.
pub const INDEX_VERSION: u8 = 3;
/// Flags of a version 2 member: how its single payload stores the original bytes.
pub const FLAG_STORED_RAW: u8 = 1;
pub const FLAG_STORED_ZSTD: u8 = 2;
/// A zstd frame can claim far more bytes than it holds, so a stored zstd member is limited
/// to this many original bytes.
pub const MAX_STORED_ZSTD_LENGTH: u64 = 1 << 24;
pub const PRECISION_BITS: u8 = 16;
pub const MODEL_ID_SIZE: usize = 16;
pub const INDEX_ID_SIZE: usize = 16;
pub const FIXED_HEADER_SIZE: usize = 40;

/// Original length (u64) and compressed size (u64) of one stream.
const STREAM_ENTRY_SIZE: usize = 16;
const HEADER_CRC_SIZE: usize = 4;

/// Upper bound on the original bytes that one stream of C payload bytes can code, checked as
/// `length <= MAX_LENGTH_PER_PAYLOAD_BYTE * (C + 1)`. A symbol has a frequency of at most
/// 65536 - 255 out of 65536, so it costs at least log2(65536 / 65281) bits, and a stream that
/// shifted out s <= C bytes codes fewer than 1423 * (s + 1) symbols. docs/FORMAT.md derives
/// the bound in full.
pub const MAX_LENGTH_PER_PAYLOAD_BYTE: u128 = 1423;

/// Header fields of a `.nz` container, excluding the constant magic and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub model_id: [u8; MODEL_ID_SIZE],
    pub original_length: u64,
    /// CRC32 (zlib's) of the original bytes.
    pub crc32: u32,
    pub stream_lengths: Vec<u64>,
    pub stream_sizes: Vec<u64>,
    pub precision_bits: u8,
    /// 0 for a model-coded member, else FLAG_STORED_RAW or FLAG_STORED_ZSTD.
    pub flags: u8,
    /// The index id of a version 3 member, else None.
    pub index_id: Option<[u8; INDEX_ID_SIZE]>,
}

impl Header {
    pub fn is_stored(&self) -> bool {
        self.flags != 0
    }

    /// Returns the format version of the member: the lowest one that can hold it.
    pub fn version(&self) -> u8 {
        if self.is_stored() {
            STORED_VERSION
        } else if self.index_id.is_some() {
            INDEX_VERSION
        } else {
            MODEL_VERSION
        }
    }

    /// Bytes of the whole member: header, stream table, header CRC and payloads.
    pub fn member_size(&self) -> u128 {
        let header = table_start(self.version())
            + STREAM_ENTRY_SIZE * self.stream_sizes.len()
            + HEADER_CRC_SIZE;
        header as u128
            + self
                .stream_sizes
                .iter()
                .map(|&size| u128::from(size))
                .sum::<u128>()
    }
}

/// Returns the offset of the stream table in a member of `version`.
pub fn table_start(version: u8) -> usize {
    if version == INDEX_VERSION {
        FIXED_HEADER_SIZE + INDEX_ID_SIZE
    } else {
        FIXED_HEADER_SIZE
    }
}

/// Formats a 16-byte model id as 32 lower-case hex digits.
pub fn model_id_hex(model_id: &[u8]) -> String {
    model_id.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Serializes a header and its stream payloads into a `.nz` container.
///
/// Returns `InvalidArgument` for a header that [`unpack`] would reject or that does not match
/// the payloads.
pub fn pack<P: AsRef<[u8]>>(header: &Header, payloads: &[P]) -> Result<Vec<u8>> {
    check_header_fields(header)?;
    let sizes: Vec<u64> = payloads
        .iter()
        .map(|payload| payload.as_ref().len() as u64)
        .collect();
    if sizes != header.stream_sizes {
        return Err(Error::InvalidArgument(format!(
            "stream sizes {:?} do not match the payload sizes {:?}",
            header.stream_sizes, sizes
        )));
    }
    if let Some(problem) = find_stream_problem(
        header.flags,
        header.original_length,
        &header.stream_lengths,
        &header.stream_sizes,
    ) {
        return Err(Error::InvalidArgument(problem));
    }
    let stream_count = u32::try_from(sizes.len()).map_err(|_| {
        Error::InvalidArgument(format!(
            "{} streams, expected at most {}",
            sizes.len(),
            u32::MAX
        ))
    })?;

    let table_end = table_start(header.version()) + STREAM_ENTRY_SIZE * sizes.len();
    let payload_bytes: usize = payloads.iter().map(|payload| payload.as_ref().len()).sum();
    let mut out = Vec::with_capacity(table_end + HEADER_CRC_SIZE + payload_bytes);
    out.extend_from_slice(&MAGIC);
    out.push(header.version());
    out.push(header.flags);
    out.push(header.precision_bits);
    out.push(0); // reserved
    out.extend_from_slice(&header.model_id);
    out.extend_from_slice(&header.original_length.to_le_bytes());
    out.extend_from_slice(&header.crc32.to_le_bytes());
    out.extend_from_slice(&stream_count.to_le_bytes());
    if let Some(index_id) = &header.index_id {
        out.extend_from_slice(index_id);
    }
    for (length, size) in header.stream_lengths.iter().zip(&sizes) {
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
    }
    let header_crc = crc32fast::hash(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    for payload in payloads {
        out.extend_from_slice(payload.as_ref());
    }
    Ok(out)
}

fn check_header_fields(header: &Header) -> Result<()> {
    if ![0, FLAG_STORED_RAW, FLAG_STORED_ZSTD].contains(&header.flags) {
        return Err(Error::InvalidArgument(format!(
            "flags {}, expected 0, {FLAG_STORED_RAW} or {FLAG_STORED_ZSTD}",
            header.flags
        )));
    }
    if let (true, Some(index_id)) = (header.is_stored(), &header.index_id) {
        return Err(Error::InvalidArgument(format!(
            "stored member with index id {}, expected none: only model-coded members name an index",
            model_id_hex(index_id)
        )));
    }
    if header.precision_bits != PRECISION_BITS {
        return Err(Error::InvalidArgument(format!(
            "precision bits {}, expected {PRECISION_BITS}",
            header.precision_bits
        )));
    }
    if header.stream_lengths.len() != header.stream_sizes.len() {
        return Err(Error::InvalidArgument(format!(
            "{} stream lengths but {} stream sizes, expected equal counts",
            header.stream_lengths.len(),
            header.stream_sizes.len()
        )));
    }
    Ok(())
}

/// The fields of the 40-byte fixed header, in file order.
struct FixedFields {
    version: u8,
    flags: u8,
    precision_bits: u8,
    reserved: u8,
    model_id: [u8; MODEL_ID_SIZE],
    original_length: u64,
    crc32: u32,
    stream_count: u32,
}

/// Parses and validates a `.nz` member that spans all of `data`, returning its header and
/// payload slices.
///
/// Returns `UnsupportedVersion` for a newer format version and `InvalidData` for anything
/// else that is not a valid member. The payloads borrow from `data`.
pub fn unpack(data: &[u8]) -> Result<(Header, Vec<&[u8]>)> {
    let (header, payloads) = unpack_member(data)?;
    let end = header.member_size();
    if end < data.len() as u128 {
        return Err(Error::InvalidData(format!(
            "trailing garbage: {} bytes after the last stream",
            data.len() as u128 - end
        )));
    }
    Ok((header, payloads))
}

/// Parses and validates the member at the start of `data`; bytes after it are left alone.
///
/// Returns errors as [`unpack`] does; the member ends at `header.member_size()`.
pub fn unpack_member(data: &[u8]) -> Result<(Header, Vec<&[u8]>)> {
    let fields = read_fixed_header(data)?;
    let stream_count = fields.stream_count as usize;

    // stream_count < 2**32, so these sums cannot overflow a 64-bit usize.
    let start = table_start(fields.version);
    let table_end = start + stream_count * STREAM_ENTRY_SIZE;
    let payload_start = table_end + HEADER_CRC_SIZE;
    if payload_start > data.len() {
        return Err(Error::InvalidData(format!(
            "truncated header: a stream table of {stream_count} streams ends at byte {payload_start}, \
             but the data has {} bytes",
            data.len()
        )));
    }

    check_header_crc(data, table_end)?;
    check_header_values(&fields)?;

    let (lengths, sizes): (Vec<u64>, Vec<u64>) = data[start..table_end]
        .chunks_exact(STREAM_ENTRY_SIZE)
        .map(|entry| (read_u64(entry, 0), read_u64(entry, 8)))
        .unzip();
    if let Some(problem) =
        find_stream_problem(fields.flags, fields.original_length, &lengths, &sizes)
    {
        return Err(Error::InvalidData(problem));
    }

    let payloads = slice_payloads(data, payload_start, &sizes)?;
    let header = Header {
        model_id: fields.model_id,
        original_length: fields.original_length,
        crc32: fields.crc32,
        stream_lengths: lengths,
        stream_sizes: sizes,
        precision_bits: fields.precision_bits,
        flags: fields.flags,
        index_id: (fields.version == INDEX_VERSION)
            .then(|| data[FIXED_HEADER_SIZE..start].try_into().expect("16 bytes")),
    };
    Ok((header, payloads))
}

fn read_u64(data: &[u8], offset: usize) -> u64 {
    let bytes: [u8; 8] = data[offset..offset + 8].try_into().expect("8 bytes");
    u64::from_le_bytes(bytes)
}

fn read_u32(data: &[u8], offset: usize) -> u32 {
    let bytes: [u8; 4] = data[offset..offset + 4].try_into().expect("4 bytes");
    u32::from_le_bytes(bytes)
}

/// Checks the fields needed to read the rest (size, magic, version) and returns all fixed
/// fields.
fn read_fixed_header(data: &[u8]) -> Result<FixedFields> {
    // A short file that does not start like the magic is another kind of file, not a cut one.
    let magic = &data[..data.len().min(MAGIC.len())];
    if magic != &MAGIC[..magic.len()] {
        return Err(Error::InvalidData(format!(
            "not an nnzip file: magic {}, expected {}",
            bytes_repr(magic),
            bytes_repr(&MAGIC)
        )));
    }

    if data.len() < FIXED_HEADER_SIZE {
        return Err(Error::InvalidData(format!(
            "truncated header: {} bytes, expected at least {FIXED_HEADER_SIZE}",
            data.len()
        )));
    }

    let magic = &data[0..4];
    if magic != MAGIC {
        return Err(Error::InvalidData(format!(
            "not an nnzip file: magic {}, expected {}",
            bytes_repr(magic),
            bytes_repr(&MAGIC)
        )));
    }

    // The version comes before the header CRC check, because a newer version may lay out the
    // rest of the header differently.
    let version = data[4];
    if version > FORMAT_VERSION {
        return Err(Error::UnsupportedVersion(format!(
            "format version {version} is newer than the newest version this nnzip reads \
             ({FORMAT_VERSION}); upgrade nnzip to decode this file"
        )));
    }
    if version < 1 {
        return Err(Error::InvalidData(format!(
            "invalid format version {version}, expected 1 to {FORMAT_VERSION}"
        )));
    }

    Ok(FixedFields {
        version,
        flags: data[5],
        precision_bits: data[6],
        reserved: data[7],
        model_id: data[8..24].try_into().expect("16 bytes"),
        original_length: read_u64(data, 24),
        crc32: read_u32(data, 32),
        stream_count: read_u32(data, 36),
    })
}

fn check_header_crc(data: &[u8], table_end: usize) -> Result<()> {
    let stored = read_u32(data, table_end);
    let computed = crc32fast::hash(&data[..table_end]);
    if stored != computed {
        return Err(Error::InvalidData(format!(
            "header CRC32 mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    Ok(())
}

/// Checks the fields that the header CRC has already confirmed as written.
fn check_header_values(fields: &FixedFields) -> Result<()> {
    if [MODEL_VERSION, INDEX_VERSION].contains(&fields.version) && fields.flags != 0 {
        return Err(Error::InvalidData(format!(
            "unknown flags {:#04x}, expected 0 (every flag is reserved)",
            fields.flags
        )));
    }
    if fields.version == STORED_VERSION {
        if ![FLAG_STORED_RAW, FLAG_STORED_ZSTD].contains(&fields.flags) {
            return Err(Error::InvalidData(format!(
                "unknown flags {:#04x} in a version 2 member, expected 0x01 (raw) or 0x02 (zstd)",
                fields.flags
            )));
        }
        if fields.model_id != [0; MODEL_ID_SIZE] {
            return Err(Error::InvalidData(format!(
                "stored member names model {}, expected the all-zero id",
                model_id_hex(&fields.model_id)
            )));
        }
        let expected = u32::from(fields.original_length > 0);
        if fields.stream_count != expected {
            return Err(Error::InvalidData(format!(
                "stored member has {} streams for {} bytes, expected {expected}",
                fields.stream_count, fields.original_length
            )));
        }
    }
    if fields.precision_bits != PRECISION_BITS {
        return Err(Error::InvalidData(format!(
            "frequency precision {} bits, expected {PRECISION_BITS}",
            fields.precision_bits
        )));
    }
    if fields.reserved != 0 {
        return Err(Error::InvalidData(format!(
            "reserved header byte is {}, expected 0",
            fields.reserved
        )));
    }

    // Each stream codes at least one byte, so there cannot be more streams than bytes.
    if u64::from(fields.stream_count) > fields.original_length {
        return Err(Error::InvalidData(format!(
            "stream count {} exceeds the original length {}",
            fields.stream_count, fields.original_length
        )));
    }
    Ok(())
}

/// Returns a one-line description of the first invalid stream table entry, or None.
///
/// Sums and bounds use u128, because the Python reference computes them without overflow.
fn find_stream_problem(
    flags: u8,
    original_length: u64,
    lengths: &[u64],
    sizes: &[u64],
) -> Option<String> {
    for (index, (&length, &size)) in lengths.iter().zip(sizes).enumerate() {
        if length == 0 {
            return Some(format!(
                "stream {index} has original length 0, expected at least 1"
            ));
        }
        if flags == FLAG_STORED_RAW && size != length {
            return Some(format!(
                "raw stored member has {size} payload bytes for {length} original bytes, expected equal"
            ));
        }
        if flags == FLAG_STORED_ZSTD && length > MAX_STORED_ZSTD_LENGTH {
            return Some(format!(
                "zstd stored member claims {length} original bytes, expected at most {MAX_STORED_ZSTD_LENGTH}"
            ));
        }
        if flags != 0 {
            continue;
        }
        let bound = MAX_LENGTH_PER_PAYLOAD_BYTE * (u128::from(size) + 1);
        if u128::from(length) > bound {
            return Some(format!(
                "stream {index} claims {length} original bytes from {size} compressed bytes, \
                 expected at most {bound}"
            ));
        }
    }

    let total: u128 = lengths.iter().map(|&length| u128::from(length)).sum();
    if total != u128::from(original_length) {
        return Some(format!(
            "stream original lengths sum to {total}, expected the original length {original_length}"
        ));
    }
    None
}

fn slice_payloads<'a>(data: &'a [u8], start: usize, sizes: &[u64]) -> Result<Vec<&'a [u8]>> {
    let available = (data.len() - start) as u128;
    let needed: u128 = sizes.iter().map(|&size| u128::from(size)).sum();
    if needed > available {
        return Err(Error::InvalidData(format!(
            "truncated payload: the streams need {needed} bytes, got {available}"
        )));
    }

    // The sizes sum to at most the bytes after `start`, so each one fits in usize and every
    // slice lies inside `data`.
    let mut payloads = Vec::with_capacity(sizes.len());
    let mut offset = start;
    for &size in sizes {
        let end = offset + size as usize;
        payloads.push(&data[offset..end]);
        offset = end;
    }
    Ok(payloads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_header(lengths: Vec<u64>, sizes: Vec<u64>) -> Header {
        Header {
            model_id: *b"0123456789abcdef",
            original_length: lengths.iter().sum(),
            crc32: 0xDEAD_BEEF,
            stream_lengths: lengths,
            stream_sizes: sizes,
            precision_bits: PRECISION_BITS,
            flags: 0,
            index_id: None,
        }
    }

    const SAMPLE_INDEX_ID: [u8; INDEX_ID_SIZE] = *b"index-id-16bytes";

    fn sample_payloads() -> [Vec<u8>; 3] {
        [vec![1u8, 2, 3], vec![], vec![9u8; 5]]
    }

    fn sample_container() -> Vec<u8> {
        let header = sample_header(vec![10, 1, 20], vec![3, 0, 5]);
        pack(&header, &sample_payloads()).unwrap()
    }

    fn sample_index_header() -> Header {
        Header {
            index_id: Some(SAMPLE_INDEX_ID),
            ..sample_header(vec![10, 1, 20], vec![3, 0, 5])
        }
    }

    fn sample_index_container() -> Vec<u8> {
        pack(&sample_index_header(), &sample_payloads()).unwrap()
    }

    /// Rewrites the header CRC after a change to the header, so the later rules see the change.
    fn fix_header_crc(data: &mut [u8]) {
        let count = read_u32(data, 36) as usize;
        let table_end = table_start(data[4]) + STREAM_ENTRY_SIZE * count;
        let crc = crc32fast::hash(&data[..table_end]);
        data[table_end..table_end + 4].copy_from_slice(&crc.to_le_bytes());
    }

    fn unpack_error(data: &[u8]) -> Error {
        unpack(data).expect_err("the container is invalid")
    }

    #[test]
    fn round_trip() {
        let data = sample_container();
        let (header, payloads) = unpack(&data).unwrap();
        assert_eq!(header, sample_header(vec![10, 1, 20], vec![3, 0, 5]));
        assert_eq!(payloads, vec![&[1u8, 2, 3][..], &[][..], &[9u8; 5][..]]);
    }

    #[test]
    fn empty_container_is_44_bytes() {
        let header = sample_header(vec![], vec![]);
        let data = pack::<Vec<u8>>(&header, &[]).unwrap();
        assert_eq!(data.len(), 44);
        let (unpacked, payloads) = unpack(&data).unwrap();
        assert_eq!(unpacked, header);
        assert!(payloads.is_empty());
    }

    #[test]
    fn short_header_rejected() {
        let data = sample_container();
        let message = unpack_error(&data[..39]).to_string();
        assert_eq!(message, "truncated header: 39 bytes, expected at least 40");
    }

    #[test]
    fn short_other_file_rejected() {
        let message = unpack_error(b"hello world, not nz\n").to_string();
        assert!(message.starts_with("not an nnzip file"), "{message}");
    }

    #[test]
    fn bad_magic_rejected() {
        let mut data = sample_container();
        data[0..4].copy_from_slice(b"PK\x03\x04");
        let message = unpack_error(&data).to_string();
        assert_eq!(
            message,
            r"not an nnzip file: magic b'PK\x03\x04', expected b'NNZ\x1a'"
        );
    }

    #[test]
    fn newer_version_rejected_before_crc() {
        let mut data = sample_container();
        data[4] = 4;
        let error = unpack_error(&data);
        assert!(matches!(error, Error::UnsupportedVersion(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "format version 4 is newer than the newest version this nnzip reads (3); \
             upgrade nnzip to decode this file"
        );
    }

    #[test]
    fn version_zero_rejected() {
        let mut data = sample_container();
        data[4] = 0;
        let error = unpack_error(&data);
        assert!(matches!(error, Error::InvalidData(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "invalid format version 0, expected 1 to 3"
        );
    }

    #[test]
    fn stream_table_past_end_rejected() {
        let mut data = sample_container();
        data[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
        let message = unpack_error(&data).to_string();
        assert_eq!(
            message,
            format!(
                "truncated header: a stream table of {} streams ends at byte {}, but the data has {} bytes",
                u32::MAX,
                44 + 16 * u64::from(u32::MAX),
                data.len()
            )
        );
    }

    #[test]
    fn header_crc_mismatch_rejected() {
        let mut data = sample_container();
        data[24] ^= 1;
        let message = unpack_error(&data).to_string();
        assert!(
            message.starts_with("header CRC32 mismatch: stored 0x"),
            "{message}"
        );
    }

    #[test]
    fn flags_checked_after_crc() {
        let mut data = sample_container();
        data[5] = 0x80;
        let message = unpack_error(&data).to_string();
        assert!(message.starts_with("header CRC32 mismatch"), "{message}");

        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert_eq!(
            message,
            "unknown flags 0x80, expected 0 (every flag is reserved)"
        );
    }

    #[test]
    fn precision_and_reserved_rejected() {
        let mut data = sample_container();
        data[6] = 12;
        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert_eq!(message, "frequency precision 12 bits, expected 16");

        let mut data = sample_container();
        data[7] = 3;
        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert_eq!(message, "reserved header byte is 3, expected 0");
    }

    #[test]
    fn more_streams_than_bytes_rejected() {
        let mut data = sample_container();
        data[24..32].copy_from_slice(&2u64.to_le_bytes());
        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert_eq!(message, "stream count 3 exceeds the original length 2");
    }

    #[test]
    fn zero_length_stream_rejected() {
        let mut data = sample_container();
        data[56..64].copy_from_slice(&0u64.to_le_bytes());
        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert_eq!(
            message,
            "stream 1 has original length 0, expected at least 1"
        );
    }

    #[test]
    fn length_bound_rejected() {
        let mut data = sample_container();
        // Stream 1 has 0 compressed bytes, so it may code at most 1423 bytes.
        data[56..64].copy_from_slice(&1424u64.to_le_bytes());
        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert_eq!(
            message,
            "stream 1 claims 1424 original bytes from 0 compressed bytes, expected at most 1423"
        );
    }

    #[test]
    fn huge_claimed_length_rejected_without_allocation() {
        let mut data = sample_container();
        data[24..32].copy_from_slice(&(1u64 << 63).to_le_bytes());
        data[40..48].copy_from_slice(&(1u64 << 63).to_le_bytes());
        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert!(
            message.starts_with("stream 0 claims 9223372036854775808"),
            "{message}"
        );
    }

    #[test]
    fn length_sum_mismatch_rejected() {
        let mut data = sample_container();
        data[24..32].copy_from_slice(&30u64.to_le_bytes());
        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert_eq!(
            message,
            "stream original lengths sum to 31, expected the original length 30"
        );
    }

    #[test]
    fn truncated_payload_rejected() {
        let data = sample_container();
        let message = unpack_error(&data[..data.len() - 1]).to_string();
        assert_eq!(
            message,
            "truncated payload: the streams need 8 bytes, got 7"
        );
    }

    #[test]
    fn trailing_garbage_rejected() {
        let mut data = sample_container();
        data.extend_from_slice(b"xyz");
        let message = unpack_error(&data).to_string();
        assert_eq!(message, "trailing garbage: 3 bytes after the last stream");
    }

    #[test]
    fn huge_sizes_rejected_as_truncated() {
        let mut data = sample_container();
        data[48..56].copy_from_slice(&u64::MAX.to_le_bytes());
        data[64..72].copy_from_slice(&u64::MAX.to_le_bytes());
        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert!(message.starts_with("truncated payload"), "{message}");
    }

    #[test]
    fn every_truncation_rejected() {
        let data = sample_container();
        for cut in 0..data.len() {
            let error = unpack_error(&data[..cut]);
            assert!(error.is_invalid_data(), "cut {cut}: {error:?}");
        }
    }

    #[test]
    fn pack_rejects_mismatched_sizes() {
        let header = sample_header(vec![10], vec![4]);
        let message = pack(&header, &[vec![1u8, 2, 3]]).unwrap_err().to_string();
        assert_eq!(
            message,
            "stream sizes [4] do not match the payload sizes [3]"
        );
    }

    #[test]
    fn pack_rejects_invalid_stream_table() {
        let header = sample_header(vec![0], vec![1]);
        let error = pack(&header, &[vec![1u8]]).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
    }

    #[test]
    fn index_member_round_trip() {
        let data = sample_index_container();
        assert_eq!(data[4], INDEX_VERSION);
        assert_eq!(&data[40..56], &SAMPLE_INDEX_ID);
        // The stream table starts at 56: stream 0 has length 10 and size 3.
        assert_eq!(read_u64(&data, 56), 10);
        assert_eq!(read_u64(&data, 64), 3);
        let crc = crc32fast::hash(&data[..56 + 16 * 3]);
        assert_eq!(read_u32(&data, 56 + 16 * 3), crc);

        let (header, payloads) = unpack(&data).unwrap();
        assert_eq!(header, sample_index_header());
        assert_eq!(header.version(), INDEX_VERSION);
        assert_eq!(header.member_size(), data.len() as u128);
        assert_eq!(payloads, vec![&[1u8, 2, 3][..], &[][..], &[9u8; 5][..]]);
    }

    #[test]
    fn index_member_is_16_bytes_longer() {
        assert_eq!(
            sample_index_container().len(),
            sample_container().len() + 16
        );
        let header = Header {
            index_id: Some(SAMPLE_INDEX_ID),
            ..sample_header(vec![], vec![])
        };
        let data = pack::<Vec<u8>>(&header, &[]).unwrap();
        assert_eq!(data.len(), 60);
        assert_eq!(unpack(&data).unwrap().0, header);
    }

    #[test]
    fn index_id_covered_by_header_crc() {
        for offset in 40..56 {
            let mut data = sample_index_container();
            data[offset] ^= 0x10;
            let message = unpack_error(&data).to_string();
            assert!(
                message.starts_with("header CRC32 mismatch"),
                "byte {offset}: {message}"
            );
        }
    }

    #[test]
    fn index_member_flags_rejected() {
        let mut data = sample_index_container();
        data[5] = FLAG_STORED_RAW;
        fix_header_crc(&mut data);
        let message = unpack_error(&data).to_string();
        assert_eq!(
            message,
            "unknown flags 0x01, expected 0 (every flag is reserved)"
        );
    }

    #[test]
    fn version_byte_selects_table_start() {
        // Relabelled as version 3, the member of 100 bytes needs 16 more for its header.
        let mut data = sample_container();
        data[4] = INDEX_VERSION;
        let message = unpack_error(&data).to_string();
        assert_eq!(
            message,
            "truncated header: a stream table of 3 streams ends at byte 108, but the data has 100 bytes"
        );

        // With payloads behind it, the first stream entry is read as the index id, and the
        // header CRC no longer matches.
        data.extend_from_slice(&[0; 16]);
        let message = unpack_error(&data).to_string();
        assert!(message.starts_with("header CRC32 mismatch"), "{message}");
    }

    #[test]
    fn every_index_member_truncation_rejected() {
        let data = sample_index_container();
        for cut in 0..data.len() {
            let error = unpack_error(&data[..cut]);
            assert!(error.is_invalid_data(), "cut {cut}: {error:?}");
        }
    }

    #[test]
    fn truncated_index_header_rejected() {
        let data = sample_index_container();
        let message = unpack_error(&data[..50]).to_string();
        assert_eq!(
            message,
            "truncated header: a stream table of 3 streams ends at byte 108, but the data has 50 bytes"
        );
    }

    #[test]
    fn pack_rejects_stored_member_with_index() {
        let header = Header {
            model_id: [0; MODEL_ID_SIZE],
            flags: FLAG_STORED_RAW,
            index_id: Some(SAMPLE_INDEX_ID),
            ..sample_header(vec![3], vec![3])
        };
        let error = pack(&header, &[vec![1u8, 2, 3]]).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
    }

    #[test]
    fn model_id_formats_as_hex() {
        assert_eq!(model_id_hex(&[0x00, 0xab, 0x10, 0xff]), "00ab10ff");
    }
}
