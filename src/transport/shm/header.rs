//! The 64 KiB segment header and its allocation table: pure parsing, validation and
//! encoding over byte slices. No `unsafe`, no I/O; [`super::segment`] copies the bytes out
//! of (and back into) the mapping and calls these functions on the copy.
//!
//! Layout (little-endian, identical to the reference's `vgi_rpc/shm.py`):
//!
//! | offset | size       | field                                                     |
//! |--------|------------|-----------------------------------------------------------|
//! | 0      | 4          | magic `VGIS`                                              |
//! | 4      | 4          | version, `u32` = 1                                        |
//! | 8      | 8          | data_size, `u64` = segment size − 65536                   |
//! | 16     | 4          | num_allocs, `u32` ≤ 4094                                  |
//! | 20     | 4          | padding, written 0, never read                            |
//! | 24     | 16 × n     | allocations `{offset: u64, length: u64}`, sorted, absolute |
//! | 65528  | 8          | unassigned by the reference; we tag segments we create   |
//!
//! The data region starts at 65536.

use super::ShmError;

/// Size of the header; the data region starts here.
pub(crate) const HEADER_SIZE: u64 = 65_536;
/// The fixed fields before the allocation table.
pub(crate) const FIXED_SIZE: usize = 24;
/// One `{offset, length}` allocation entry.
pub(crate) const ENTRY_SIZE: usize = 16;
/// Capacity of the allocation table: `(65536 - 24) / 16`.
pub(crate) const MAX_ALLOCS: usize = (HEADER_SIZE as usize - FIXED_SIZE) / ENTRY_SIZE;
/// `b"VGIS"`.
pub(crate) const MAGIC: [u8; 4] = *b"VGIS";
/// The only header version the protocol defines.
pub(crate) const VERSION: u32 = 1;
/// Byte offset of the version field (written last when a segment is initialised).
pub(crate) const VERSION_AT: usize = 4;
/// Byte offset of `num_allocs`.
pub(crate) const NUM_ALLOCS_AT: usize = 16;
/// Byte offset of the first allocation entry.
pub(crate) const TABLE_AT: usize = FIXED_SIZE;
/// The 8 header bytes after the largest possible table, which the reference never reads or
/// writes. Segments created by this crate carry [`OWNER_TAG`] there so that
/// [`super::sweep_orphans`] can tell them from segments of other implementations.
pub(crate) const OWNER_TAG_AT: usize = TABLE_AT + MAX_ALLOCS * ENTRY_SIZE;
/// Marks a segment created by this crate (see [`OWNER_TAG_AT`]).
pub(crate) const OWNER_TAG: [u8; 8] = *b"vgi-rs\0\x01";

const _: () = assert!(MAX_ALLOCS == 4094);
const _: () = assert!(OWNER_TAG_AT + OWNER_TAG.len() == HEADER_SIZE as usize);
const _: () = assert!(HEADER_SIZE.is_multiple_of(64));

/// One allocation: `length` bytes at absolute `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) offset: u64,
    pub(crate) length: u64,
}

impl Entry {
    /// One past the last byte. Entries in a validated [`Table`] never overflow.
    pub(crate) fn end(self) -> u64 {
        self.offset.saturating_add(self.length)
    }
}

/// The fixed 24-byte part of the header, decoded but not yet validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fixed {
    pub(crate) magic: [u8; 4],
    pub(crate) version: u32,
    pub(crate) data_size: u64,
    pub(crate) num_allocs: u32,
}

impl Fixed {
    /// Decodes the fixed fields.
    pub(crate) fn decode(bytes: &[u8; FIXED_SIZE]) -> Self {
        let [
            m0,
            m1,
            m2,
            m3,
            v0,
            v1,
            v2,
            v3,
            d0,
            d1,
            d2,
            d3,
            d4,
            d5,
            d6,
            d7,
            n0,
            n1,
            n2,
            n3,
            ..,
        ] = *bytes;
        Fixed {
            magic: [m0, m1, m2, m3],
            version: u32::from_le_bytes([v0, v1, v2, v3]),
            data_size: u64::from_le_bytes([d0, d1, d2, d3, d4, d5, d6, d7]),
            num_allocs: u32::from_le_bytes([n0, n1, n2, n3]),
        }
    }

    /// The fields of a freshly initialised header (no allocations, padding 0).
    pub(crate) fn encode_initial(segment_size: u64) -> [u8; FIXED_SIZE] {
        let mut out = [0u8; FIXED_SIZE];
        out[..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&VERSION.to_le_bytes());
        out[8..16].copy_from_slice(&segment_size.saturating_sub(HEADER_SIZE).to_le_bytes());
        out
    }

    /// Checks magic, version, `data_size` against the real (fstat'ed) segment size and
    /// the table bound; returns the number of entries to read.
    pub(crate) fn validate(&self, segment_size: u64) -> Result<usize, ShmError> {
        check_segment_size(segment_size)?;
        if self.magic != MAGIC {
            return Err(ShmError::BadMagic(self.magic));
        }
        if self.version != VERSION {
            return Err(ShmError::UnsupportedVersion(self.version));
        }
        let expected = segment_size - HEADER_SIZE;
        if self.data_size != expected {
            return Err(ShmError::DataSizeMismatch {
                data_size: self.data_size,
                expected,
            });
        }
        let num = self.num_allocs as usize;
        if num > MAX_ALLOCS {
            return Err(ShmError::TooManyAllocations(self.num_allocs));
        }
        Ok(num)
    }
}

/// A segment is a header plus a non-empty data region, and must be mappable.
pub(crate) fn check_segment_size(segment_size: u64) -> Result<(), ShmError> {
    if segment_size <= HEADER_SIZE || segment_size > isize::MAX as u64 {
        return Err(ShmError::BadSize(segment_size));
    }
    Ok(())
}

/// A validated allocation table: entries non-empty, sorted by offset, non-overlapping, all
/// inside `[65536, segment_size)`, at most [`MAX_ALLOCS`] of them. Only [`Table::parse`]
/// and the allocator (which preserves the invariants) build one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Table {
    pub(super) entries: Vec<Entry>,
}

impl Table {
    /// Parses and validates `num` entries from `bytes` (the table region, at least
    /// `num * 16` bytes) against a segment of `segment_size` bytes.
    pub(crate) fn parse(bytes: &[u8], num: usize, segment_size: u64) -> Result<Self, ShmError> {
        if num > MAX_ALLOCS {
            return Err(ShmError::TooManyAllocations(
                u32::try_from(num).unwrap_or(u32::MAX),
            ));
        }
        let table = bytes
            .get(..num * ENTRY_SIZE)
            .ok_or(ShmError::HeaderTooShort(bytes.len()))?;
        let mut entries = Vec::with_capacity(num);
        let mut prev_end = HEADER_SIZE;
        for (index, chunk) in table.chunks_exact(ENTRY_SIZE).enumerate() {
            let mut offset = [0u8; 8];
            let mut length = [0u8; 8];
            offset.copy_from_slice(&chunk[..8]);
            length.copy_from_slice(&chunk[8..]);
            let entry = Entry {
                offset: u64::from_le_bytes(offset),
                length: u64::from_le_bytes(length),
            };
            let bad = |reason| ShmError::BadEntry {
                index,
                offset: entry.offset,
                length: entry.length,
                reason,
            };
            if entry.length == 0 {
                return Err(bad("empty allocation"));
            }
            if entry.offset < HEADER_SIZE {
                return Err(bad("starts inside the header"));
            }
            if entry.offset < prev_end {
                return Err(bad("unsorted or overlapping the previous allocation"));
            }
            let end = entry
                .offset
                .checked_add(entry.length)
                .ok_or(bad("offset + length overflows"))?;
            if end > segment_size {
                return Err(bad("ends past the segment"));
            }
            prev_end = end;
            entries.push(entry);
        }
        Ok(Table { entries })
    }

    /// Parses a whole header image (at least the fixed fields and the table it announces).
    #[cfg(test)]
    pub(crate) fn parse_header(header: &[u8], segment_size: u64) -> Result<Self, ShmError> {
        let fixed: &[u8; FIXED_SIZE] = header
            .get(..FIXED_SIZE)
            .and_then(|b| b.try_into().ok())
            .ok_or(ShmError::HeaderTooShort(header.len()))?;
        let num = Fixed::decode(fixed).validate(segment_size)?;
        Table::parse(
            header.get(TABLE_AT..).unwrap_or_default(),
            num,
            segment_size,
        )
    }

    /// The entries, sorted by offset.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry starting exactly at `offset`, if any.
    #[cfg(test)]
    pub(crate) fn find(&self, offset: u64) -> Option<Entry> {
        self.entries
            .binary_search_by_key(&offset, |e| e.offset)
            .ok()
            .map(|i| self.entries[i])
    }

    /// The table bytes (`num_allocs * 16`), to be stored at [`TABLE_AT`] before
    /// `num_allocs` itself is updated.
    pub(crate) fn encode_entries(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * ENTRY_SIZE);
        for e in &self.entries {
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.length.to_le_bytes());
        }
        out
    }

    /// The `num_allocs` field for this table.
    pub(crate) fn encode_count(&self) -> [u8; 4] {
        // A validated table holds at most MAX_ALLOCS (4094) entries.
        u32::try_from(self.entries.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIZE: u64 = 1 << 20;

    fn header(fixed: [u8; FIXED_SIZE], entries: &[(u64, u64)]) -> Vec<u8> {
        let mut h = fixed.to_vec();
        h[16..20].copy_from_slice(&(entries.len() as u32).to_le_bytes());
        for (o, l) in entries {
            h.extend_from_slice(&o.to_le_bytes());
            h.extend_from_slice(&l.to_le_bytes());
        }
        h
    }

    #[test]
    fn initial_header_matches_the_reference_bytes() {
        // struct.pack("<4sIQII", b"VGIS", 1, SIZE - 65536, 0, 0)
        let fixed = Fixed::encode_initial(SIZE);
        assert_eq!(&fixed[..4], b"VGIS");
        assert_eq!(fixed[4..8], [1, 0, 0, 0]);
        assert_eq!(fixed[8..16], (SIZE - 65536).to_le_bytes());
        assert_eq!(fixed[16..24], [0; 8]);
        let t = Table::parse_header(&header(fixed, &[]), SIZE).unwrap();
        assert!(t.entries().is_empty());
    }

    #[test]
    fn valid_table_round_trips() {
        let entries = [(65536, 100), (65636, 1), (200_000, 48_576), (SIZE - 1, 1)];
        let t = Table::parse_header(&header(Fixed::encode_initial(SIZE), &entries), SIZE).unwrap();
        let got: Vec<_> = t.entries().iter().map(|e| (e.offset, e.length)).collect();
        assert_eq!(got, entries);
        assert_eq!(t.encode_entries(), header([0; 24], &entries)[24..]);
        assert_eq!(t.encode_count(), 4u32.to_le_bytes());
        assert_eq!(t.find(200_000).map(|e| e.length), Some(48_576));
        assert_eq!(t.find(200_001), None);
    }

    #[test]
    fn corrupt_headers_are_typed_errors() {
        let ok = Fixed::encode_initial(SIZE);
        let parse = |h: Vec<u8>| Table::parse_header(&h, SIZE).unwrap_err();

        let mut bad = ok;
        bad[0] = b'X';
        assert!(matches!(parse(header(bad, &[])), ShmError::BadMagic(_)));
        let mut bad = ok;
        bad[4] = 2;
        assert_eq!(parse(header(bad, &[])), ShmError::UnsupportedVersion(2));
        let bad = Fixed::encode_initial(SIZE * 2);
        assert!(matches!(
            parse(header(bad, &[])),
            ShmError::DataSizeMismatch { .. }
        ));
        let mut h = header(ok, &[]);
        h[16..20].copy_from_slice(&4095u32.to_le_bytes());
        assert_eq!(parse(h), ShmError::TooManyAllocations(4095));
        let mut h = header(ok, &[]);
        h[16..20].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(parse(h), ShmError::HeaderTooShort(0));
        assert_eq!(
            Table::parse_header(&ok[..10], SIZE).unwrap_err(),
            ShmError::HeaderTooShort(10)
        );
        assert_eq!(
            Table::parse_header(&header(ok, &[]), HEADER_SIZE).unwrap_err(),
            ShmError::BadSize(HEADER_SIZE)
        );

        let reason = |entries: &[(u64, u64)]| match parse(header(ok, entries)) {
            ShmError::BadEntry { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(&[(65536, 0)]), "empty allocation");
        assert_eq!(reason(&[(100, 10)]), "starts inside the header");
        assert_eq!(
            reason(&[(70000, 10), (65536, 10)]),
            "unsorted or overlapping the previous allocation"
        );
        assert_eq!(
            reason(&[(65536, 100), (65600, 10)]),
            "unsorted or overlapping the previous allocation"
        );
        assert_eq!(reason(&[(SIZE - 10, 11)]), "ends past the segment");
        assert_eq!(reason(&[(u64::MAX, 2)]), "offset + length overflows");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Arbitrary header bytes and sizes never panic; a table that parses satisfies the
        /// invariants every later use relies on.
        #[test]
        fn arbitrary_headers_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            size in prop_oneof![Just(SIZE), any::<u64>(), HEADER_SIZE - 2..HEADER_SIZE + 2],
        ) {
            if let Ok(t) = Table::parse_header(&bytes, size) {
                check_invariants(&t, size);
            }
        }

        /// Near-valid headers (right magic, version and size; random entries) exercise
        /// the entry checks rather than stopping at the magic.
        #[test]
        fn random_tables_never_panic(
            entries in proptest::collection::vec(
                (prop_oneof![0..SIZE + 10, any::<u64>()], prop_oneof![0..SIZE, any::<u64>()]),
                0..40,
            ),
            sort in any::<bool>(),
        ) {
            let mut entries = entries;
            if sort {
                entries.sort_unstable();
            }
            let h = header(Fixed::encode_initial(SIZE), &entries);
            if let Ok(t) = Table::parse_header(&h, SIZE) {
                check_invariants(&t, SIZE);
                prop_assert_eq!(t.entries().len(), entries.len());
            }
        }
    }

    pub(crate) fn check_invariants(t: &Table, size: u64) {
        assert!(t.entries().len() <= MAX_ALLOCS);
        let mut prev = HEADER_SIZE;
        for e in t.entries() {
            assert!(e.length > 0 && e.offset >= prev);
            let end = e.offset.checked_add(e.length).unwrap();
            assert!(end <= size);
            prev = end;
        }
    }
}
