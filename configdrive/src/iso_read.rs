//! Reads the files of an ISO9660 image, with Rock Ridge names when the image has them (as config
//! drives from Nova, genisoimage and [`crate::ConfigDrive::to_iso`] do). Meant for images that may
//! come from anywhere: every offset is checked, and walks are bounded.

use crate::iso_write::SECTOR;
use crate::ConfigDriveError;
use std::collections::BTreeMap;

/// Deeper than any config drive; ISO9660 itself allows 8 levels.
const MAX_DEPTH: usize = 16;
/// Bounds the work done on a hostile image (directory loops, huge directories).
const MAX_ENTRIES: usize = 100_000;
/// Bounds `CE` chains in a System Use area.
const MAX_CONTINUATIONS: usize = 16;

fn malformed(what: &str) -> ConfigDriveError {
    ConfigDriveError::Malformed(what.to_string())
}

fn slice<'a>(
    image: &'a [u8],
    start: usize,
    length: usize,
    what: &str,
) -> Result<&'a [u8], ConfigDriveError> {
    start
        .checked_add(length)
        .and_then(|end| image.get(start..end))
        .ok_or_else(|| malformed(what))
}

fn le_u32(bytes: &[u8], at: usize) -> Result<u32, ConfigDriveError> {
    let field = bytes
        .get(at..at + 4)
        .ok_or_else(|| malformed("short field"))?;
    let mut array = [0u8; 4];
    array.copy_from_slice(field);
    Ok(u32::from_le_bytes(array))
}

/// One parsed directory record.
struct Record<'a> {
    extent: usize,
    size: usize,
    is_directory: bool,
    multi_extent: bool,
    identifier: &'a [u8],
    system_use: &'a [u8],
}

fn parse_record(record: &[u8]) -> Result<Record<'_>, ConfigDriveError> {
    if record.len() < 34 {
        return Err(malformed("directory record too short"));
    }
    let identifier_length = usize::from(record[32]);
    let identifier = record
        .get(33..33 + identifier_length)
        .ok_or_else(|| malformed("identifier"))?;
    let mut system_use_start = 33 + identifier_length;
    if identifier_length % 2 == 0 {
        system_use_start += 1;
    }
    let flags = record[25];
    Ok(Record {
        extent: le_u32(record, 2)? as usize,
        size: le_u32(record, 10)? as usize,
        is_directory: flags & 0b10 != 0,
        multi_extent: flags & 0b1000_0000 != 0,
        identifier,
        system_use: record.get(system_use_start..).unwrap_or(&[]),
    })
}

/// The records of a directory extent, "." and ".." included.
fn directory_records<'a>(
    image: &'a [u8],
    extent: usize,
    size: usize,
) -> Result<Vec<Record<'a>>, ConfigDriveError> {
    let start = extent
        .checked_mul(SECTOR)
        .ok_or_else(|| malformed("directory extent"))?;
    let data = slice(image, start, size, "directory extent outside the image")?;
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let length = usize::from(data[offset]);
        if length == 0 {
            // The rest of this sector is padding.
            offset = (offset / SECTOR + 1) * SECTOR;
            continue;
        }
        let record = data
            .get(offset..offset + length)
            .ok_or_else(|| malformed("directory record"))?;
        records.push(parse_record(record)?);
        offset += length;
    }
    Ok(records)
}

/// What the reader learned from the root's "." record.
#[derive(Clone, Copy)]
struct Susp {
    /// Bytes to skip at the start of each System Use area (from `SP`).
    skip: usize,
}

/// A SUSP entry: its signature and its bytes (header included).
type SuspEntry<'a> = ([u8; 2], &'a [u8]);

/// The SUSP entries of one System Use area, following `CE` continuations.
fn susp_entries<'a>(
    image: &'a [u8],
    area: &'a [u8],
) -> Result<Vec<SuspEntry<'a>>, ConfigDriveError> {
    let mut entries = Vec::new();
    let mut area = area;
    let mut continuations = 0;
    loop {
        let mut next_area = None;
        let mut offset = 0;
        while offset + 4 <= area.len() {
            let signature = [area[offset], area[offset + 1]];
            let length = usize::from(area[offset + 2]);
            if length < 4 {
                break;
            }
            let Some(entry) = area.get(offset..offset + length) else {
                break;
            };
            match &signature {
                b"ST" => break,
                b"CE" if entry.len() >= 28 => {
                    let sector = le_u32(entry, 4)? as usize;
                    let within = le_u32(entry, 12)? as usize;
                    let size = le_u32(entry, 20)? as usize;
                    let start = sector
                        .checked_mul(SECTOR)
                        .and_then(|start| start.checked_add(within));
                    let start = start.ok_or_else(|| malformed("continuation area"))?;
                    next_area = Some(slice(
                        image,
                        start,
                        size,
                        "continuation area outside the image",
                    )?);
                }
                _ => entries.push((signature, entry)),
            }
            offset += length;
        }
        match next_area {
            Some(found) if continuations < MAX_CONTINUATIONS => {
                continuations += 1;
                area = found;
            }
            Some(_) => return Err(malformed("too many continuation areas")),
            None => return Ok(entries),
        }
    }
}

/// The Rock Ridge name of a record (`NM` entries, concatenated), if it has one.
fn rock_ridge_name(
    image: &[u8],
    record: &Record<'_>,
    susp: Susp,
) -> Result<Option<String>, ConfigDriveError> {
    let area = record.system_use.get(susp.skip..).unwrap_or(&[]);
    let mut name: Option<Vec<u8>> = None;
    for (signature, entry) in susp_entries(image, area)? {
        if &signature == b"NM" && entry.len() >= 5 {
            let flags = entry[4];
            if flags & 0b110 != 0 {
                // "." or "..": not a real name.
                continue;
            }
            name.get_or_insert_with(Vec::new)
                .extend_from_slice(&entry[5..]);
        }
    }
    name.map(|bytes| {
        String::from_utf8(bytes).map_err(|_| malformed("Rock Ridge name is not UTF-8"))
    })
    .transpose()
}

/// The plain ISO9660 name: version and a bare trailing dot removed.
fn iso_name(identifier: &[u8]) -> Result<String, ConfigDriveError> {
    let text = std::str::from_utf8(identifier).map_err(|_| malformed("identifier is not ASCII"))?;
    let text = text.split(';').next().unwrap_or(text);
    Ok(text.strip_suffix('.').unwrap_or(text).to_string())
}

/// Every file of an ISO9660 image, by path (`openstack/latest/meta_data.json`), with its bytes.
/// Names come from Rock Ridge when the image has it, else from the ISO9660 identifiers.
/// Joliet-only names and multi-extent files are not supported.
pub fn read_iso_files(image: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, ConfigDriveError> {
    let mut primary = None;
    for index in 16..16 + 64 {
        let descriptor = slice(
            image,
            index * SECTOR,
            SECTOR,
            "no primary volume descriptor",
        )?;
        if &descriptor[1..6] != b"CD001" {
            return Err(malformed("not an ISO9660 image"));
        }
        match descriptor[0] {
            1 => {
                primary = Some(descriptor);
                break;
            }
            255 => break,
            _ => {}
        }
    }
    let primary = primary.ok_or_else(|| malformed("no primary volume descriptor"))?;
    let root = parse_record(&primary[156..190])?;
    let root_records = directory_records(image, root.extent, root.size)?;
    let susp = root_records.first().and_then(|dot| {
        let sp = dot.system_use;
        (sp.len() >= 7 && &sp[..2] == b"SP" && sp[4] == 0xBE && sp[5] == 0xEF).then_some(Susp {
            skip: usize::from(sp[6]),
        })
    });

    let mut files = BTreeMap::new();
    let mut entries_seen = 0;
    let mut pending = vec![(root.extent, root.size, String::new(), 0usize)];
    while let Some((extent, size, prefix, depth)) = pending.pop() {
        for record in directory_records(image, extent, size)?.iter().skip(2) {
            entries_seen += 1;
            if entries_seen > MAX_ENTRIES {
                return Err(malformed("too many directory entries"));
            }
            let name = match susp {
                Some(susp) => rock_ridge_name(image, record, susp)?,
                None => None,
            };
            let name = match name {
                Some(name) => name,
                None => iso_name(record.identifier)?,
            };
            if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                return Err(malformed("unusable file name"));
            }
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if record.is_directory {
                if depth + 1 > MAX_DEPTH {
                    return Err(malformed("directories nested too deep"));
                }
                pending.push((record.extent, record.size, path, depth + 1));
            } else if record.multi_extent {
                return Err(malformed("multi-extent files are not supported"));
            } else {
                let bytes = if record.size == 0 {
                    Vec::new()
                } else {
                    let start = record
                        .extent
                        .checked_mul(SECTOR)
                        .ok_or_else(|| malformed("file extent"))?;
                    slice(image, start, record.size, "file outside the image")?.to_vec()
                };
                files.insert(path, bytes);
            }
        }
    }
    Ok(files)
}
