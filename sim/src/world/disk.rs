//! A simulated disk that outlives its host's crashes.
//!
//! Writes are pending until `sync`; a crash drops what is pending, and tears a write in
//! flight: when a file's only unsynced write is an append, a crash keeps a random part of
//! it (at least a byte, never all), as a power loss mid-write does. Storage that must
//! survive that writes [`Disk::append_record`]s, which [`Disk::records`] reads back with a
//! torn last record cut off. Ours rather than turmoil's `unstable-fs`, whose worker threads
//! are seeded from OS randomness.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A host's disk: named files of bytes. Clones share the same disk.
#[derive(Clone, Debug)]
pub struct Disk(Rc<RefCell<Files>>);

#[derive(Debug)]
struct Files {
    synced: BTreeMap<String, Vec<u8>>,
    /// Files written since the last sync, as they would read now.
    pending: BTreeMap<String, Vec<u8>>,
    /// The latest write, if an append: its file and where it began.
    appended: Option<(String, usize)>,
    /// Where crashes tear writes.
    tears: ChaCha8Rng,
}

impl Disk {
    /// An empty disk whose crashes tear writes where `tears` says.
    pub(crate) fn new(tears: ChaCha8Rng) -> Disk {
        Disk(Rc::new(RefCell::new(Files {
            synced: BTreeMap::new(),
            pending: BTreeMap::new(),
            appended: None,
            tears,
        })))
    }

    /// The file as the host sees it now, pending writes included.
    pub fn read(&self, file: &str) -> Option<Vec<u8>> {
        let files = self.0.borrow();
        files
            .pending
            .get(file)
            .or_else(|| files.synced.get(file))
            .cloned()
    }

    /// Replace a file's contents (pending until [`Disk::sync`]); a crash never tears it, as
    /// if written beside and renamed.
    pub fn write(&self, file: &str, bytes: &[u8]) {
        let mut files = self.0.borrow_mut();
        files.pending.insert(file.to_string(), bytes.to_vec());
        files.appended = None;
    }

    /// Append to a file (pending until [`Disk::sync`]).
    pub fn append(&self, file: &str, bytes: &[u8]) {
        let mut contents = self.read(file).unwrap_or_default();
        let start = contents.len();
        contents.extend_from_slice(bytes);
        let mut files = self.0.borrow_mut();
        files.pending.insert(file.to_string(), contents);
        files.appended = Some((file.to_string(), start));
    }

    /// Make every pending write durable.
    pub fn sync(&self) {
        let mut files = self.0.borrow_mut();
        let pending = std::mem::take(&mut files.pending);
        files.synced.extend(pending);
        files.appended = None;
    }

    /// What a power loss does: pending writes are gone, but for part of an append that was
    /// its file's only unsynced write.
    pub(crate) fn crash(&self) {
        let files = &mut *self.0.borrow_mut();
        let pending = std::mem::take(&mut files.pending);
        let Some((file, start)) = files.appended.take() else {
            return;
        };
        let synced = files.synced.get(&file).map_or(0, Vec::len);
        let Some(contents) = pending.get(&file).filter(|c| c.len() > start + 1) else {
            return;
        };
        if synced == start {
            let kept = files.tears.random_range(start + 1..contents.len());
            files.synced.insert(file, contents[..kept].to_vec());
        }
    }

    /// Append `record` (no newline in it) framed with a checksum, so that a torn one is
    /// told from a whole one: `<16 hex digits of its BLAKE3> <record>\n`.
    pub fn append_record(&self, file: &str, record: &[u8]) {
        self.append(file, &frame(record));
    }

    /// The records of `file` in order. A torn last record (what a crash mid-append leaves)
    /// is cut off the file for good, as a log's recovery does; a damaged record before the
    /// last is corruption, an error.
    pub fn records(&self, file: &str) -> Result<Vec<Vec<u8>>, String> {
        let bytes = self.read(file).unwrap_or_default();
        let mut records = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let line = bytes[at..]
                .split(|&b| b == b'\n')
                .next()
                .unwrap_or_default();
            let end = at + line.len() + 1;
            match unframe(line).filter(|_| end <= bytes.len()) {
                Some(record) => records.push(record.to_vec()),
                // A torn append never keeps its newline: a last line without one.
                None if end > bytes.len() => {
                    self.write(file, &bytes[..at]);
                    self.sync();
                    break;
                }
                None => return Err(format!("{file}: a damaged record at byte {at}")),
            }
            at = end;
        }
        Ok(records)
    }
}

/// A record as [`Disk::append_record`] writes it.
pub fn frame(record: &[u8]) -> Vec<u8> {
    let mut out = sum(record).into_bytes();
    out.push(b' ');
    out.extend_from_slice(record);
    out.push(b'\n');
    out
}

fn sum(record: &[u8]) -> String {
    blake3::hash(record).to_hex()[..16].to_string()
}

/// The record in a framed line, if its checksum holds.
fn unframe(line: &[u8]) -> Option<&[u8]> {
    let (digest, record) = (line.get(..16)?, line.get(17..)?);
    (digest == sum(record).as_bytes() && line[16] == b' ').then_some(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn disk(seed: u64) -> Disk {
        Disk::new(ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn crash_loses_unsynced_writes_only() {
        let disk = disk(0);
        disk.append("log", b"a");
        disk.sync();
        disk.write("log", b"abc");
        assert_eq!(disk.read("log").unwrap(), b"abc");
        disk.crash();
        assert_eq!(disk.read("log").unwrap(), b"a");
    }

    #[test]
    fn a_crash_tears_the_append_in_flight_and_records_cut_it_off() {
        for seed in 0..32 {
            let disk = disk(seed);
            disk.append_record("log", b"first");
            disk.sync();
            disk.append_record("log", b"second record");
            disk.crash();
            let torn = disk.read("log").unwrap();
            assert!(
                torn.len() > frame(b"first").len(),
                "seed {seed}: some of it stays"
            );
            assert!(torn.len() < frame(b"first").len() + frame(b"second record").len());
            assert_eq!(disk.records("log").unwrap(), [b"first".to_vec()]);
            // The torn tail is gone: what comes next reads back whole.
            disk.append_record("log", b"third");
            assert_eq!(
                disk.records("log").unwrap(),
                [b"first".to_vec(), b"third".to_vec()]
            );
        }
    }

    #[test]
    fn damage_before_the_last_record_is_an_error() {
        let disk = disk(0);
        disk.append_record("log", b"one");
        disk.append_record("log", b"two");
        let mut bytes = disk.read("log").unwrap();
        bytes[20] ^= 1;
        disk.write("log", &bytes);
        assert!(disk.records("log").is_err());
    }
}
