//! A simulated disk that outlives its host's crashes.
//!
//! Writes are pending until `sync`; a crash drops what is pending. Ours rather than turmoil's
//! `unstable-fs`, whose worker threads are seeded from OS randomness.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A host's disk: named files of bytes. Clones share the same disk.
#[derive(Clone, Debug, Default)]
pub struct Disk(Rc<RefCell<Files>>);

#[derive(Debug, Default)]
struct Files {
    synced: BTreeMap<String, Vec<u8>>,
    /// Files written since the last sync, as they would read now.
    pending: BTreeMap<String, Vec<u8>>,
}

impl Disk {
    /// The file as the host sees it now, pending writes included.
    pub fn read(&self, file: &str) -> Option<Vec<u8>> {
        let files = self.0.borrow();
        files
            .pending
            .get(file)
            .or_else(|| files.synced.get(file))
            .cloned()
    }

    /// Replace a file's contents (pending until [`Disk::sync`]).
    pub fn write(&self, file: &str, bytes: &[u8]) {
        self.0
            .borrow_mut()
            .pending
            .insert(file.to_string(), bytes.to_vec());
    }

    /// Append to a file (pending until [`Disk::sync`]).
    pub fn append(&self, file: &str, bytes: &[u8]) {
        let mut contents = self.read(file).unwrap_or_default();
        contents.extend_from_slice(bytes);
        self.0
            .borrow_mut()
            .pending
            .insert(file.to_string(), contents);
    }

    /// Make every pending write durable.
    pub fn sync(&self) {
        let mut files = self.0.borrow_mut();
        let pending = std::mem::take(&mut files.pending);
        files.synced.extend(pending);
    }

    /// What a power loss does: pending writes are gone.
    pub(crate) fn crash(&self) {
        self.0.borrow_mut().pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_loses_unsynced_writes_only() {
        let disk = Disk::default();
        disk.append("log", b"a");
        disk.sync();
        disk.append("log", b"b");
        assert_eq!(disk.read("log").unwrap(), b"ab");
        disk.crash();
        assert_eq!(disk.read("log").unwrap(), b"a");
    }
}
