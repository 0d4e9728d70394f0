//! A small ISO9660 writer with Rock Ridge names: level-1 (8.3, uppercase) identifiers underneath,
//! the real names and POSIX modes in SUSP/RRIP entries, every file in one extent, identical file
//! contents stored once. Pure: bytes in, bytes out, deterministic for a given timestamp.
//!
//! Layout, in 2048-byte sectors: 0-15 system area (zeros), 16 primary volume descriptor, 17 set
//! terminator, then the little- and big-endian path tables, one sector holding the Rock Ridge `ER`
//! entry (too long for the root's "." record, reached through a `CE` entry), the directories in
//! path-table order, and the file contents.

use crate::ConfigDriveError;
use std::collections::{BTreeMap, HashMap};

pub(crate) const SECTOR: usize = 2048;
const FIRST_VOLUME_DESCRIPTOR: usize = 16;
/// Enough for any tree we write: level-1 names are unique long before this many tries.
const MAX_NAME_TRIES: usize = 100_000;

const MODE_DIRECTORY: u32 = 0o040_555;
const MODE_FILE: u32 = 0o100_444;

const RRIP_ID: &[u8] = b"RRIP_1991A";
const RRIP_DESCRIPTOR: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const RRIP_SOURCE: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

/// What the image says about itself, besides its files.
#[derive(Debug, Clone)]
pub(crate) struct ImageOptions<'a> {
    /// Volume identifier (`config-2`); written as given, space padded.
    pub volume_id: &'a str,
    pub publisher: &'a str,
    /// Every timestamp in the image, seconds since the Unix epoch, UTC.
    pub unix_time: i64,
}

/// A broken-down UTC time, as both ISO9660 date formats need it.
#[derive(Debug, Clone, Copy)]
struct CivilTime {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl CivilTime {
    fn from_unix(unix_time: i64) -> Self {
        let days = unix_time.div_euclid(86_400);
        let seconds = unix_time.rem_euclid(86_400);
        // Days to a proleptic Gregorian date (the well-known era/day-of-era computation).
        let shifted = days + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        CivilTime {
            year,
            month: month as u8,
            day: day as u8,
            hour: (seconds / 3600) as u8,
            minute: (seconds / 60 % 60) as u8,
            second: (seconds % 60) as u8,
        }
    }

    /// The 7-byte form of directory records and `TF` entries (years since 1900, UTC).
    fn short(self) -> [u8; 7] {
        let year = (self.year - 1900).clamp(0, 255) as u8;
        [
            year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            0,
        ]
    }

    /// The 17-byte digit form of volume descriptors.
    fn long(self) -> [u8; 17] {
        let text = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            self.year.clamp(0, 9999),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second
        );
        let mut out = [0u8; 17];
        out[..16].copy_from_slice(&text.as_bytes()[..16]);
        out
    }
}

/// "Not specified" in the 17-byte date form.
const NO_DATE: [u8; 17] = *b"0000000000000000\0";

fn both_u32(value: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&value.to_le_bytes());
    out[4..].copy_from_slice(&value.to_be_bytes());
    out
}

fn both_u16(value: u16) -> [u8; 4] {
    let mut out = [0u8; 4];
    out[..2].copy_from_slice(&value.to_le_bytes());
    out[2..].copy_from_slice(&value.to_be_bytes());
    out
}

fn sectors_for(bytes: usize) -> usize {
    bytes.div_ceil(SECTOR)
}

fn to_u32(value: usize, image_bytes: usize) -> Result<u32, ConfigDriveError> {
    u32::try_from(value).map_err(|_| ConfigDriveError::TooLarge(image_bytes))
}

/// One directory of the tree, in path-table order (parents before children).
struct Directory {
    /// Index of the parent in the directory list; the root is its own parent.
    parent: usize,
    /// Level-1 identifier (empty for the root).
    iso_name: String,
    children: Vec<Entry>,
    subdirectory_count: usize,
}

struct Entry {
    real_name: String,
    iso_name: String,
    kind: EntryKind,
}

enum EntryKind {
    Directory(usize),
    /// Index into the list of distinct contents.
    File(usize),
}

/// Directory or file name as a level-1 base and extension (d-characters only).
fn level1_parts(real_name: &str, is_directory: bool) -> (String, String) {
    fn d_characters(text: &str, limit: usize) -> String {
        text.chars()
            .map(|character| match character {
                'a'..='z' => character.to_ascii_uppercase(),
                'A'..='Z' | '0'..='9' | '_' => character,
                _ => '_',
            })
            .take(limit)
            .collect()
    }
    let (base, extension) = match real_name.rsplit_once('.') {
        Some((base, extension)) if !is_directory && !base.is_empty() => (base, extension),
        _ => (real_name, ""),
    };
    let mut base = d_characters(base, 8);
    if base.is_empty() {
        base.push('_');
    }
    (base, d_characters(extension, 3))
}

/// Level-1 identifiers for the names of one directory, unique within it: a clash gets a counter
/// in the last characters of its base name.
fn assign_level1_names(names: &[(String, bool)]) -> Result<Vec<String>, ConfigDriveError> {
    let mut taken = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(names.len());
    for (real_name, is_directory) in names {
        let (base, extension) = level1_parts(real_name, *is_directory);
        let render = |base: &str| {
            if *is_directory {
                base.to_string()
            } else {
                format!("{base}.{extension};1")
            }
        };
        let mut candidate = render(&base);
        let mut counter = 0;
        while taken.contains(&candidate) {
            counter += 1;
            if counter > MAX_NAME_TRIES {
                return Err(ConfigDriveError::BadPath(real_name.clone()));
            }
            let suffix = counter.to_string();
            let keep = base.len().min(8 - suffix.len().min(8));
            candidate = render(&format!("{}{suffix}", &base[..keep]));
        }
        taken.insert(candidate.clone());
        out.push(candidate);
    }
    Ok(out)
}

/// ISO9660 order of identifiers: base name, then extension, each padded with spaces.
fn identifier_sort_key(identifier: &str) -> (String, String) {
    let without_version = identifier.split(';').next().unwrap_or(identifier);
    let (base, extension) = without_version
        .split_once('.')
        .unwrap_or((without_version, ""));
    (format!("{base:<8}"), format!("{extension:<3}"))
}

#[derive(Default)]
struct TreeNode {
    directories: BTreeMap<String, TreeNode>,
    files: BTreeMap<String, usize>,
}

/// Builds the directory list (breadth first, which is path-table order) and the distinct contents.
fn build_tree(
    files: &[(String, Vec<u8>)],
) -> Result<(Vec<Directory>, Vec<&[u8]>), ConfigDriveError> {
    let mut contents: Vec<&[u8]> = Vec::new();
    let mut content_index: HashMap<&[u8], usize> = HashMap::new();
    let mut root = TreeNode::default();
    for (path, bytes) in files {
        let components: Vec<&str> = path.split('/').collect();
        let valid = |component: &&str| {
            !component.is_empty()
                && *component != "."
                && *component != ".."
                && component.len() <= 64
        };
        if !components.iter().all(valid) || components.len() > 7 {
            return Err(ConfigDriveError::BadPath(path.clone()));
        }
        let Some((file_name, parents)) = components.split_last() else {
            return Err(ConfigDriveError::BadPath(path.clone()));
        };
        let mut node = &mut root;
        for component in parents {
            if node.files.contains_key(*component) {
                return Err(ConfigDriveError::BadPath(path.clone()));
            }
            node = node
                .directories
                .entry((*component).to_string())
                .or_default();
        }
        if node.directories.contains_key(*file_name) {
            return Err(ConfigDriveError::BadPath(path.clone()));
        }
        let next = contents.len();
        let index = *content_index.entry(bytes.as_slice()).or_insert(next);
        if index == next {
            contents.push(bytes);
        }
        node.files.insert((*file_name).to_string(), index);
    }

    let mut directories = vec![Directory {
        parent: 0,
        iso_name: String::new(),
        children: Vec::new(),
        subdirectory_count: 0,
    }];
    let mut queue = std::collections::VecDeque::from([(0usize, root)]);
    while let Some((index, node)) = queue.pop_front() {
        let names: Vec<(String, bool)> = node
            .directories
            .keys()
            .map(|name| (name.clone(), true))
            .chain(node.files.keys().map(|name| (name.clone(), false)))
            .collect();
        let iso_names = assign_level1_names(&names)?;
        let mut children: Vec<(Entry, Option<TreeNode>)> = Vec::new();
        let mut subdirectories = node.directories.into_iter();
        let mut files_here = node.files.into_iter();
        for ((real_name, is_directory), iso_name) in names.into_iter().zip(iso_names) {
            if is_directory {
                let subtree = subdirectories.next().map(|(_, subtree)| subtree);
                let entry = Entry {
                    real_name,
                    iso_name,
                    kind: EntryKind::Directory(0),
                };
                children.push((entry, subtree));
            } else {
                let content = files_here.next().map_or(0, |(_, content)| content);
                children.push((
                    Entry {
                        real_name,
                        iso_name,
                        kind: EntryKind::File(content),
                    },
                    None,
                ));
            }
        }
        // Path-table order wants siblings sorted by identifier before they get their numbers.
        children.sort_by(|a, b| {
            identifier_sort_key(&a.0.iso_name).cmp(&identifier_sort_key(&b.0.iso_name))
        });
        let mut entries = Vec::with_capacity(children.len());
        for (mut entry, subtree) in children {
            if let Some(subtree) = subtree {
                let child_index = directories.len();
                directories.push(Directory {
                    parent: index,
                    iso_name: entry.iso_name.clone(),
                    children: Vec::new(),
                    subdirectory_count: 0,
                });
                entry.kind = EntryKind::Directory(child_index);
                queue.push_back((child_index, subtree));
            }
            entries.push(entry);
        }
        let subdirectory_count = entries
            .iter()
            .filter(|entry| matches!(entry.kind, EntryKind::Directory(_)))
            .count();
        if let Some(directory) = directories.get_mut(index) {
            directory.children = entries;
            directory.subdirectory_count = subdirectory_count;
        }
    }
    Ok((directories, contents))
}

/// The System Use entries of one directory record.
struct SystemUse<'a> {
    mode: u32,
    links: u32,
    name: Option<&'a str>,
    /// Only on the root's "." record: `SP` first, and a `CE` pointing at the `ER` sector.
    root_dot_continuation: Option<u32>,
    time: [u8; 7],
}

impl SystemUse<'_> {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.root_dot_continuation.is_some() {
            out.extend_from_slice(&[b'S', b'P', 7, 1, 0xBE, 0xEF, 0]);
        }
        out.extend_from_slice(&[b'P', b'X', 36, 1]);
        out.extend_from_slice(&both_u32(self.mode));
        out.extend_from_slice(&both_u32(self.links));
        out.extend_from_slice(&both_u32(0)); // uid
        out.extend_from_slice(&both_u32(0)); // gid
                                             // Modification, access and attribute-change times.
        out.extend_from_slice(&[b'T', b'F', 5 + 3 * 7, 1, 0b0000_1110]);
        for _ in 0..3 {
            out.extend_from_slice(&self.time);
        }
        if let Some(name) = self.name {
            out.extend_from_slice(&[b'N', b'M', (5 + name.len()) as u8, 1, 0]);
            out.extend_from_slice(name.as_bytes());
        }
        if let Some(sector) = self.root_dot_continuation {
            out.extend_from_slice(&[b'C', b'E', 28, 1]);
            out.extend_from_slice(&both_u32(sector));
            out.extend_from_slice(&both_u32(0));
            out.extend_from_slice(&both_u32(er_entry().len() as u32));
        }
        out
    }
}

fn er_entry() -> Vec<u8> {
    let length = 8 + RRIP_ID.len() + RRIP_DESCRIPTOR.len() + RRIP_SOURCE.len();
    let mut out = vec![
        b'E',
        b'R',
        length as u8,
        1,
        RRIP_ID.len() as u8,
        RRIP_DESCRIPTOR.len() as u8,
        RRIP_SOURCE.len() as u8,
        1,
    ];
    out.extend_from_slice(RRIP_ID);
    out.extend_from_slice(RRIP_DESCRIPTOR);
    out.extend_from_slice(RRIP_SOURCE);
    out
}

fn directory_record(
    extent: u32,
    size: u32,
    is_directory: bool,
    identifier: &[u8],
    system_use: &[u8],
    time: [u8; 7],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(34 + identifier.len() + system_use.len());
    out.extend_from_slice(&[0, 0]); // length, set below; no extended attributes
    out.extend_from_slice(&both_u32(extent));
    out.extend_from_slice(&both_u32(size));
    out.extend_from_slice(&time);
    out.push(if is_directory { 0b10 } else { 0 });
    out.extend_from_slice(&[0, 0]); // not interleaved
    out.extend_from_slice(&both_u16(1)); // volume sequence number
    out.push(identifier.len() as u8);
    out.extend_from_slice(identifier);
    if out.len() % 2 == 1 {
        out.push(0);
    }
    out.extend_from_slice(system_use);
    if out.len() % 2 == 1 {
        out.push(0);
    }
    out[0] = out.len() as u8;
    out
}

/// Records laid into sectors: a record never crosses a sector boundary.
fn lay_out_records(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        let used = out.len() % SECTOR;
        if used + record.len() > SECTOR {
            out.resize(out.len() + SECTOR - used, 0);
        }
        out.extend_from_slice(record);
    }
    out.resize(sectors_for(out.len()).max(1) * SECTOR, 0);
    out
}

/// The records of one directory, given where every directory and content lives.
fn records_of(
    directories: &[Directory],
    index: usize,
    directory_places: &[(u32, u32)],
    content_places: &[(u32, u32)],
    er_sector: u32,
    time: [u8; 7],
) -> Vec<Vec<u8>> {
    let Some(directory) = directories.get(index) else {
        return Vec::new();
    };
    let place = |index: usize| directory_places.get(index).copied().unwrap_or((0, 0));
    let links = |directory: &Directory| (2 + directory.subdirectory_count) as u32;
    let parent = directories.get(directory.parent).unwrap_or(directory);
    let (extent, size) = place(index);
    let (parent_extent, parent_size) = place(directory.parent);
    let dot_use = SystemUse {
        mode: MODE_DIRECTORY,
        links: links(directory),
        name: None,
        root_dot_continuation: (index == 0).then_some(er_sector),
        time,
    };
    let dotdot_use = SystemUse {
        links: links(parent),
        root_dot_continuation: None,
        ..dot_use
    };
    let mut records = vec![
        directory_record(extent, size, true, &[0], &dot_use.bytes(), time),
        directory_record(
            parent_extent,
            parent_size,
            true,
            &[1],
            &dotdot_use.bytes(),
            time,
        ),
    ];
    for entry in &directory.children {
        let (is_directory, (extent, size), mode, links) = match entry.kind {
            EntryKind::Directory(child) => {
                let child_links = directories.get(child).map_or(2, links);
                (true, place(child), MODE_DIRECTORY, child_links)
            }
            EntryKind::File(content) => (
                false,
                content_places.get(content).copied().unwrap_or((0, 0)),
                MODE_FILE,
                1,
            ),
        };
        let system_use = SystemUse {
            mode,
            links,
            name: Some(&entry.real_name),
            root_dot_continuation: None,
            time,
        };
        records.push(directory_record(
            extent,
            size,
            is_directory,
            entry.iso_name.as_bytes(),
            &system_use.bytes(),
            time,
        ));
    }
    records
}

fn path_table(
    directories: &[Directory],
    directory_places: &[(u32, u32)],
    big_endian: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, directory) in directories.iter().enumerate() {
        let identifier: &[u8] = if index == 0 {
            &[0]
        } else {
            directory.iso_name.as_bytes()
        };
        let extent = directory_places.get(index).map_or(0, |place| place.0);
        let parent_number = (directory.parent + 1) as u16;
        out.push(identifier.len() as u8);
        out.push(0);
        if big_endian {
            out.extend_from_slice(&extent.to_be_bytes());
            out.extend_from_slice(&parent_number.to_be_bytes());
        } else {
            out.extend_from_slice(&extent.to_le_bytes());
            out.extend_from_slice(&parent_number.to_le_bytes());
        }
        out.extend_from_slice(identifier);
        if identifier.len() % 2 == 1 {
            out.push(0);
        }
    }
    out
}

fn padded_text<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    for (slot, byte) in out.iter_mut().zip(text.bytes()) {
        *slot = byte;
    }
    out
}

/// Writes the image holding `files` (`dir/dir/name` → bytes) and the directories they imply.
/// `max_bytes` bounds the image; over it the answer is [`ConfigDriveError::TooLarge`].
pub(crate) fn write_image(
    files: &[(String, Vec<u8>)],
    options: &ImageOptions<'_>,
    max_bytes: usize,
) -> Result<Vec<u8>, ConfigDriveError> {
    let (directories, contents) = build_tree(files)?;
    let time = CivilTime::from_unix(options.unix_time);
    let short_time = time.short();

    // Directory sizes do not depend on where things are, so lay everything out first.
    let placeholder_places = vec![(0, 0); directories.len()];
    let directory_sizes: Vec<usize> = (0..directories.len())
        .map(|index| {
            lay_out_records(&records_of(
                &directories,
                index,
                &placeholder_places,
                &[],
                0,
                short_time,
            ))
            .len()
        })
        .collect();
    let path_table_bytes = path_table(&directories, &placeholder_places, false).len();
    let path_table_sectors = sectors_for(path_table_bytes).max(1);

    let little_path_table_sector = FIRST_VOLUME_DESCRIPTOR + 2;
    let big_path_table_sector = little_path_table_sector + path_table_sectors;
    let er_sector = big_path_table_sector + path_table_sectors;
    let mut next_sector = er_sector + 1;
    let total_content: usize = contents.iter().map(|content| content.len()).sum();
    let estimate = (next_sector
        + directory_sizes
            .iter()
            .map(|size| size / SECTOR)
            .sum::<usize>())
        * SECTOR
        + total_content;
    if estimate > max_bytes {
        return Err(ConfigDriveError::TooLarge(estimate));
    }

    let mut directory_places = Vec::with_capacity(directories.len());
    for size in &directory_sizes {
        directory_places.push((to_u32(next_sector, estimate)?, to_u32(*size, estimate)?));
        next_sector += size / SECTOR;
    }
    let mut content_places = Vec::with_capacity(contents.len());
    for content in &contents {
        // Empty files take no sector; by custom they point at sector 0.
        let sector = if content.is_empty() { 0 } else { next_sector };
        content_places.push((to_u32(sector, estimate)?, to_u32(content.len(), estimate)?));
        next_sector += sectors_for(content.len());
    }
    let total_sectors = next_sector;
    let mut image = vec![0u8; total_sectors * SECTOR];
    let mut put = |sector: usize, bytes: &[u8]| {
        let start = sector * SECTOR;
        if let Some(slot) = image.get_mut(start..start + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
    };

    // Primary volume descriptor.
    let root = directory_places.first().copied().unwrap_or((0, 0));
    let mut descriptor = vec![0u8; SECTOR];
    descriptor[0] = 1;
    descriptor[1..6].copy_from_slice(b"CD001");
    descriptor[6] = 1;
    descriptor[8..40].copy_from_slice(&padded_text::<32>(""));
    descriptor[40..72].copy_from_slice(&padded_text::<32>(options.volume_id));
    descriptor[80..88].copy_from_slice(&both_u32(to_u32(total_sectors, estimate)?));
    descriptor[120..124].copy_from_slice(&both_u16(1));
    descriptor[124..128].copy_from_slice(&both_u16(1));
    descriptor[128..132].copy_from_slice(&both_u16(SECTOR as u16));
    descriptor[132..140].copy_from_slice(&both_u32(path_table_bytes as u32));
    descriptor[140..144].copy_from_slice(&(little_path_table_sector as u32).to_le_bytes());
    descriptor[148..152].copy_from_slice(&(big_path_table_sector as u32).to_be_bytes());
    let root_record = directory_record(root.0, root.1, true, &[0], &[], short_time);
    descriptor[156..190].copy_from_slice(&root_record);
    descriptor[190..318].copy_from_slice(&padded_text::<128>(""));
    descriptor[318..446].copy_from_slice(&padded_text::<128>(options.publisher));
    descriptor[446..574].copy_from_slice(&padded_text::<128>(""));
    descriptor[574..702].copy_from_slice(&padded_text::<128>(""));
    descriptor[702..813].copy_from_slice(&[b' '; 111]);
    descriptor[813..830].copy_from_slice(&time.long());
    descriptor[830..847].copy_from_slice(&time.long());
    descriptor[847..864].copy_from_slice(&NO_DATE);
    descriptor[864..881].copy_from_slice(&NO_DATE);
    descriptor[881] = 1;
    put(FIRST_VOLUME_DESCRIPTOR, &descriptor);

    let mut terminator = vec![0u8; 7];
    terminator[0] = 255;
    terminator[1..6].copy_from_slice(b"CD001");
    terminator[6] = 1;
    put(FIRST_VOLUME_DESCRIPTOR + 1, &terminator);

    put(
        little_path_table_sector,
        &path_table(&directories, &directory_places, false),
    );
    put(
        big_path_table_sector,
        &path_table(&directories, &directory_places, true),
    );
    put(er_sector, &er_entry());
    for (index, (sector, _)) in directory_places.iter().enumerate() {
        let records = records_of(
            &directories,
            index,
            &directory_places,
            &content_places,
            er_sector as u32,
            short_time,
        );
        put(*sector as usize, &lay_out_records(&records));
    }
    for (content, (sector, _)) in contents.iter().zip(&content_places) {
        if !content.is_empty() {
            put(*sector as usize, content);
        }
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_from_unix() {
        let time = CivilTime::from_unix(1_344_556_800 + 3_723); // 2012-08-10 01:02:03
        assert_eq!(&time.long()[..16], b"2012081001020300");
        assert_eq!(time.short(), [112, 8, 10, 1, 2, 3, 0]);
        assert_eq!(&CivilTime::from_unix(0).long()[..16], b"1970010100000000");
        assert_eq!(&CivilTime::from_unix(951_782_400).long()[..8], b"20000229");
    }

    #[test]
    fn level1_names_are_unique_per_directory() {
        let names: Vec<(String, bool)> = [
            ("meta_data.json", false),
            ("user_data", false),
            ("vendor_data.json", false),
            ("vendor_data2.json", false),
            ("2012-08-10", true),
            ("openstack", true),
            (".hidden", false),
        ]
        .iter()
        .map(|(name, is_directory)| ((*name).to_string(), *is_directory))
        .collect();
        let iso_names = assign_level1_names(&names).expect("names");
        assert_eq!(
            iso_names,
            [
                "META_DAT.JSO;1",
                "USER_DAT.;1",
                "VENDOR_D.JSO;1",
                "VENDOR_1.JSO;1",
                "2012_08_",
                "OPENSTAC",
                "_HIDDEN.;1"
            ]
        );
    }

    #[test]
    fn bad_paths_are_refused() {
        for path in ["", "a//b", "a/../b", "/a", "a/"] {
            let files = vec![(path.to_string(), b"x".to_vec())];
            assert!(build_tree(&files).is_err(), "{path:?}");
        }
        let clash = vec![
            ("a".to_string(), b"x".to_vec()),
            ("a/b".to_string(), b"y".to_vec()),
        ];
        assert!(build_tree(&clash).is_err());
    }
}
