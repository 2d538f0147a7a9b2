//! Per-batch custom metadata: an ordered list of UTF-8 key/value pairs.
//!
//! Order is kept as written (the reference writes insertion order); lookups are linear,
//! which beats hashing for the handful of keys a batch carries.
//!
//! Every batch of every call carries metadata (a request has about seven entries), so the
//! representation is chosen for decoding: all keys and values live back to back in one
//! string and the entries are ranges into it. Decoding a message's metadata is two
//! allocations, not two per entry. A replaced or removed value leaves its old text
//! behind until the metadata is dropped; batches are small and short-lived.

use std::ops::Range;

/// The custom metadata of one RecordBatch message.
#[derive(Default)]
pub struct Metadata {
    /// Keys and values, back to back.
    text: String,
    /// (key, value) ranges into `text`, in order.
    entries: Vec<(Range<usize>, Range<usize>)>,
}

impl Clone for Metadata {
    fn clone(&self) -> Self {
        Metadata {
            text: self.text.clone(),
            entries: self.entries.clone(),
        }
    }

    /// Reuses this metadata's buffers (a per-call copy of a cached one allocates
    /// nothing once they are large enough).
    fn clone_from(&mut self, source: &Self) {
        self.text.clone_from(&source.text);
        self.entries.clone_from(&source.entries);
    }
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty metadata with room for `entries` entries of `text` bytes in all.
    pub fn with_capacity(entries: usize, text: usize) -> Self {
        Metadata {
            text: String::with_capacity(text),
            entries: Vec::with_capacity(entries),
        }
    }

    /// Removes every entry, keeping the buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn position(&self, key: &str) -> Option<usize> {
        // Lengths first, then bytes: no char-boundary checks on slicing the text.
        let text = self.text.as_bytes();
        self.entries
            .iter()
            .position(|(k, _)| k.len() == key.len() && text.get(k.clone()) == Some(key.as_bytes()))
    }

    fn append(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        let (_, v) = &self.entries[self.position(key)?];
        Some(&self.text[v.clone()])
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key` to `value`, replacing an existing entry in place (keeping its position).
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        match self.position(key) {
            Some(i) => self.entries[i].1 = self.append(value),
            None => self.push(key, value),
        }
    }

    /// Replaces the value of `key` in place when `value` is exactly as long (so no old
    /// text is left behind); `false`, changing nothing, otherwise.
    pub(crate) fn overwrite(&mut self, key: &str, value: &str) -> bool {
        let Some(i) = self.position(key) else {
            return false;
        };
        let range = self.entries[i].1.clone();
        if range.len() != value.len() {
            return false;
        }
        // Not `replace_range`: its splice was a visible share of a traced call's decode.
        // SAFETY: `range` is a whole value, appended as a `&str`, so it begins and ends on
        // char boundaries; `value` is valid UTF-8 of the same length and replaces it
        // byte for byte, so the text stays valid UTF-8.
        #[allow(unsafe_code)]
        unsafe {
            self.text.as_bytes_mut()[range].copy_from_slice(value.as_bytes());
        }
        true
    }

    /// Appends an entry without looking for an existing one with the same key (decoding:
    /// the wire's entries are taken as they come).
    pub(crate) fn push(&mut self, key: &str, value: &str) {
        let key = self.append(key);
        let value = self.append(value);
        self.entries.push((key, value));
    }

    /// Builder form of [`Metadata::insert`].
    #[must_use]
    pub fn with(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.insert(key, value);
        self
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let (_, v) = self.entries.remove(self.position(key)?);
        Some(self.text[v].to_owned())
    }

    /// Inserts every entry of `other` (replacing entries with the same key).
    pub fn merge(&mut self, other: Metadata) {
        for (key, value) in other.iter() {
            self.insert(key, value);
        }
    }

    /// Iterates entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(k, v)| (&self.text[k.clone()], &self.text[v.clone()]))
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Metadata {}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut md = Metadata::new();
        for (k, v) in iter {
            md.insert(k, v);
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::Metadata;

    #[test]
    fn insert_replaces_in_place_and_remove_keeps_order() {
        let mut md = Metadata::new().with("a", "1").with("b", "2").with("c", "3");
        md.insert("b", "two");
        assert_eq!(
            md.iter().collect::<Vec<_>>(),
            [("a", "1"), ("b", "two"), ("c", "3")]
        );
        assert_eq!(md.remove("a").as_deref(), Some("1"));
        assert_eq!(md.get("a"), None);
        assert_eq!(md.get("c"), Some("3"));
        assert_eq!(md.len(), 2);
        // Equality is by entries, not by the text left behind.
        assert_eq!(md, Metadata::new().with("b", "two").with("c", "3"));
        assert_ne!(md, Metadata::new().with("c", "3").with("b", "two"));
    }

    #[test]
    fn overwrite_replaces_a_value_of_the_same_length_only() {
        let mut md = Metadata::new().with("a", "1").with("b", "xy");
        assert!(md.overwrite("b", "zw"));
        assert!(!md.overwrite("b", "long"));
        assert!(!md.overwrite("c", "zw"));
        assert_eq!(md, Metadata::new().with("a", "1").with("b", "zw"));
        assert_eq!(md.text, "a1bzw", "no old text left behind");
    }
}
