//! Files of several members: each member codes the next piece of the original bytes, coded by
//! the model or stored raw or as a zstd frame, and a file decodes to their concatenation.
//!
//! This follows `nnzip/members.py`, which writes the members. nnzip-core reads them, so a
//! file that the Python command line writes decodes here with the same bytes and messages.

use std::io::Read;

use crate::codec::{self, Progress};
use crate::container::{self, Header, FLAG_STORED_RAW, MAGIC};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::pyrepr::bytes_repr;

/// One member of a file: its header, its bytes and its byte offset in the file.
pub struct Member<'a> {
    pub header: Header,
    pub data: &'a [u8],
    pub offset: usize,
}

/// Splits a `.nz` file into its members, validating each header.
///
/// Errors in a member after the first name its offset, because a file of many members is
/// usually a concatenation, and the offset locates the damaged part.
pub fn split_members(blob: &[u8]) -> Result<Vec<Member<'_>>> {
    if blob.is_empty() {
        return Err(Error::InvalidData(
            "empty file: a .nz file has at least one member of 44 bytes".to_owned(),
        ));
    }
    let mut members = Vec::new();
    let mut offset = 0;
    while offset < blob.len() {
        let rest = &blob[offset..];
        let head = &rest[..rest.len().min(MAGIC.len())];
        if offset > 0 && head != &MAGIC[..head.len()] {
            return Err(Error::InvalidData(format!(
                "trailing garbage at byte {offset}: expected another member (magic {}), got {}",
                bytes_repr(&MAGIC),
                bytes_repr(head)
            )));
        }
        let (header, _) =
            container::unpack_member(rest).map_err(|error| at_offset(error, offset))?;
        // unpack_member checked that the payloads are present, so the size fits in `rest`.
        let size = header.member_size() as usize;
        members.push(Member {
            header,
            data: &rest[..size],
            offset,
        });
        offset += size;
    }
    Ok(members)
}

/// Returns the sum of the original lengths of all members, after validating their headers.
pub fn original_length(blob: &[u8]) -> Result<u64> {
    let mut total: u64 = 0;
    for member in split_members(blob)? {
        total = total.saturating_add(member.header.original_length);
    }
    Ok(total)
}

/// Returns the model id of the first model-coded member, or None if every member is stored.
pub fn first_model_id(blob: &[u8]) -> Result<Option<[u8; container::MODEL_ID_SIZE]>> {
    Ok(split_members(blob)?
        .into_iter()
        .find(|member| !member.header.is_stored())
        .map(|member| member.header.model_id))
}

/// Decodes every member of `blob` and returns the concatenation of their original bytes.
///
/// `model` decodes the model-coded members; a file of stored members needs none.
pub fn decompress(blob: &[u8], model: Option<&Model>, progress: Progress) -> Result<Vec<u8>> {
    let members = split_members(blob)?;
    let mut out = Vec::new();
    for member in &members {
        let data = decode_member(member, model, progress)
            .map_err(|error| at_offset(error, member.offset))?;
        out.extend_from_slice(&data);
    }
    Ok(out)
}

fn decode_member(
    member: &Member<'_>,
    model: Option<&Model>,
    progress: Progress,
) -> Result<Vec<u8>> {
    let header = &member.header;
    if !header.is_stored() {
        let model = model.ok_or_else(|| {
            Error::ModelLoad(format!(
                "the member names model {}, but no model was given",
                container::model_id_hex(&header.model_id)
            ))
        })?;
        return codec::decompress_with_progress(member.data, model, &mut *progress);
    }
    let (_, payloads) = container::unpack_member(member.data)?;
    let data = match payloads.first() {
        None => Vec::new(),
        Some(payload) if header.flags == FLAG_STORED_RAW => payload.to_vec(),
        Some(payload) => zstd_payload(payload, header.original_length)?,
    };
    let crc = crc32fast::hash(&data);
    if crc != header.crc32 {
        return Err(Error::Checksum(format!(
            "checksum mismatch: stored CRC32 {:08x}, decoded {crc:08x}; the file is corrupted",
            header.crc32
        )));
    }
    progress(data.len())?;
    Ok(data)
}

/// Decodes a zstd frame, reading at most one byte past `length`, because a frame can claim
/// any content size and the header's length is the bound that the container checked.
fn zstd_payload(payload: &[u8], length: u64) -> Result<Vec<u8>> {
    let corrupted = |error: &dyn std::fmt::Display| {
        Error::InvalidData(format!("zstd stored member is corrupted: {error}"))
    };
    let decoder =
        ruzstd::decoding::StreamingDecoder::new(payload).map_err(|error| corrupted(&error))?;
    let mut data = Vec::new();
    decoder
        .take(length + 1)
        .read_to_end(&mut data)
        .map_err(|error| corrupted(&error))?;
    let got = data.len() as u64;
    if got > length {
        return Err(Error::InvalidData(format!(
            "zstd stored member decodes to more than the {length} bytes its header declares"
        )));
    }
    if got < length {
        return Err(Error::InvalidData(format!(
            "zstd stored member decoded to {got} bytes, but the header declares {length}"
        )));
    }
    Ok(data)
}

/// Prefixes the message of an error in a member after the first with the member's offset.
fn at_offset(error: Error, offset: usize) -> Error {
    if offset == 0 {
        return error;
    }
    let prefix = |message: String| format!("member at byte {offset}: {message}");
    match error {
        Error::InvalidData(message) => Error::InvalidData(prefix(message)),
        Error::UnsupportedVersion(message) => Error::UnsupportedVersion(prefix(message)),
        Error::Checksum(message) => Error::Checksum(prefix(message)),
        Error::ModelMismatch(message) => Error::ModelMismatch(prefix(message)),
        other => other,
    }
}
