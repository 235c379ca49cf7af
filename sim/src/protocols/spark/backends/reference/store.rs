//! A node's store, and its form on disk: one record an entry, of the key's length (`u32`),
//! the key, the deadline (`u64` nanoseconds of the node's clock, `u64::MAX` for none), the
//! TTL it was set with (`u32`), the value's length (`u32`) and the value, all little-endian.

use std::collections::BTreeMap;
use std::time::Duration;

/// A stored entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub value: Vec<u8>,
    /// When it expires, on the node's clock; `None`: never.
    pub deadline: Option<Duration>,
    /// The TTL it was set with, in seconds.
    pub ttl: u32,
}

/// Entries by key.
pub type Items = BTreeMap<String, Item>;

/// The store's bytes on disk.
pub fn encode(items: &Items) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, item) in items {
        let deadline = item.deadline.map_or(u64::MAX, |d| d.as_nanos() as u64);
        out.extend((key.len() as u32).to_le_bytes());
        out.extend(key.as_bytes());
        out.extend(deadline.to_le_bytes());
        out.extend(item.ttl.to_le_bytes());
        out.extend((item.value.len() as u32).to_le_bytes());
        out.extend(&item.value);
    }
    out
}

/// The store [`encode`] wrote, or `None` if the bytes are not one.
pub fn decode(mut bytes: &[u8]) -> Option<Items> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = bytes.split_at_checked(n)?;
        *bytes = tail;
        Some(head)
    }
    fn u32(bytes: &mut &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?))
    }
    let mut items = Items::new();
    while !bytes.is_empty() {
        let len = u32(&mut bytes)? as usize;
        let key = String::from_utf8(take(&mut bytes, len)?.to_vec()).ok()?;
        let deadline = u64::from_le_bytes(take(&mut bytes, 8)?.try_into().ok()?);
        let ttl = u32(&mut bytes)?;
        let len = u32(&mut bytes)? as usize;
        let value = take(&mut bytes, len)?.to_vec();
        let deadline = (deadline != u64::MAX).then(|| Duration::from_nanos(deadline));
        items.insert(
            key,
            Item {
                value,
                deadline,
                ttl,
            },
        );
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_reads_back_as_written() {
        let mut items = Items::new();
        let item = |value: &[u8], deadline, ttl| Item {
            value: value.to_vec(),
            deadline,
            ttl,
        };
        items.insert("k0".into(), item(b"c1.0.0", None, 0));
        items.insert("k1".into(), item(b"", Some(Duration::from_millis(2500)), 2));
        assert_eq!(decode(&encode(&items)), Some(items.clone()));
        assert_eq!(decode(&encode(&items)[..5]), None);
    }
}
