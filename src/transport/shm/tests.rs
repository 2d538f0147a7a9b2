//! Segment-level tests on real POSIX segments: round trips between two mappings, the
//! zero-copy Arrow path, capacity limits, corrupt headers, truncation and leaks.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use arrow_array::Int64Array;
use arrow_buffer::ScalarBuffer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::header::{FIXED_SIZE, Fixed, MAX_ALLOCS, NUM_ALLOCS_AT, TABLE_AT};
use super::*;
use crate::Error;

const MIB: usize = 1 << 20;

fn dev_shm(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name)
}

fn protocol_message(e: Error) -> String {
    match e {
        Error::Protocol(m) => m,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

fn publish(seg: &Segment, payload: &[u8]) -> ShmPointer {
    let mut region = seg.allocate(payload.len()).unwrap().unwrap();
    region.as_mut_slice()[..payload.len()].copy_from_slice(payload);
    region.publish(payload.len()).unwrap()
}

/// Writes a raw header (fixed fields with `num_allocs` and the given entries).
fn write_table(seg: &Segment, entries: &[(u64, u64)]) {
    let mut table = Vec::new();
    for (o, l) in entries {
        table.extend_from_slice(&o.to_le_bytes());
        table.extend_from_slice(&l.to_le_bytes());
    }
    seg.write_header_for_test(TABLE_AT, &table);
    seg.write_header_for_test(NUM_ALLOCS_AT, &(entries.len() as u32).to_le_bytes());
}

#[test]
fn create_attach_publish_read_free() {
    let client = Segment::create(MIB).unwrap();
    let name = client.name().to_owned();
    assert!(name.starts_with("psm_") && name.len() == 12, "{name}");
    assert!(dev_shm(&name).exists());
    assert!(client.is_owner());
    assert_eq!(client.size(), MIB as u64);

    let worker = Segment::attach(&name).unwrap();
    assert!(!worker.is_owner());
    assert_eq!(worker.size(), MIB as u64);

    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let ptr = publish(&client, &payload);
    assert_eq!(
        ptr,
        ShmPointer {
            offset: 65536,
            length: 1000
        }
    );
    assert_eq!(worker.allocations().unwrap(), [(65536, 1024)]);
    // The reader frees: claim, read, drop, and the next turn releases it.
    let region = worker.claim(ptr).unwrap();
    assert_eq!(region.as_slice(), &payload[..]);
    drop(region);
    assert_eq!(worker.reclaim().unwrap(), 1);
    assert_eq!(client.allocations().unwrap(), []);
    assert!(protocol_message(worker.free(ptr.offset).unwrap_err()).contains("no shm allocation"));

    // The worker allocates in the client's segment too; an explicit free by offset is the
    // reference's way.
    let back = publish(&worker, b"result");
    assert_eq!(client.claim(back).unwrap().as_slice(), b"result");
    let other = publish(&worker, b"other");
    client.free(other.offset).unwrap(); // applies the deferred free of `back` too
    assert_eq!(client.reclaim().unwrap(), 0);
    assert_eq!(worker.allocations().unwrap(), []);
    client.check().unwrap();
}

#[test]
fn claimed_region_becomes_a_zero_copy_arrow_buffer_freed_on_last_drop() {
    let client = Segment::create(MIB).unwrap();
    let worker = Segment::attach(client.name()).unwrap();
    let values: Vec<i64> = (0..1000).map(|i| i * 3 - 7).collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let ptr = publish(&worker, &bytes);

    let region = client.claim(ptr).unwrap();
    assert_eq!(region.pointer(), ptr);
    assert_eq!(region.len(), bytes.len());
    assert_eq!(region.as_slice(), &bytes[..]);
    // One claim per region; an explicit free of a held region is refused.
    assert!(protocol_message(client.claim(ptr).unwrap_err()).contains("still held"));
    assert!(protocol_message(client.free(ptr.offset).unwrap_err()).contains("still held"));

    let keep = region.clone();
    let buffer = region.into_buffer();
    assert_eq!(buffer.as_ptr(), keep.as_slice().as_ptr(), "no copy");
    let array = Int64Array::new(ScalarBuffer::new(buffer.clone(), 0, values.len()), None);
    assert_eq!(array.values().as_ref(), &values[..]);
    let tail = buffer.slice(8 * 990);
    drop((keep, buffer, array));
    assert!(
        client.pending_for_test().is_empty(),
        "a slice still holds it"
    );
    assert_eq!(tail.len(), 80);
    drop(tail);

    // Dropping never touches the header; the next turn applies the free.
    assert_eq!(client.pending_for_test(), [ptr.offset]);
    assert_eq!(client.allocations().unwrap(), [(65536, 8000)]);
    assert_eq!(client.reclaim().unwrap(), 1);
    assert_eq!(client.reclaim().unwrap(), 0);
    assert_eq!(worker.allocations().unwrap(), []);
    // The offset can be claimed again once reused.
    let again = publish(&worker, b"x");
    assert_eq!(again.offset, ptr.offset);
    drop(client.claim(again).unwrap());
    // allocate() applies pending frees too.
    let next = client.allocate(10).unwrap().unwrap();
    assert_eq!(next.offset(), 65536);
}

#[test]
fn unpublished_regions_are_freed_and_overruns_refused() {
    let seg = Segment::create(MIB).unwrap();
    let region = seg.allocate(100).unwrap().unwrap();
    assert_eq!((region.offset(), region.capacity()), (65536, 128));
    drop(region);
    assert_eq!(seg.allocations().unwrap(), [(65536, 128)]);
    let region = seg.allocate(5000).unwrap().unwrap();
    assert_eq!(region.offset(), 65536, "the dropped region was reused");
    assert!(protocol_message(region.publish(5121).unwrap_err()).contains("wrote 5121"));
    assert_eq!(seg.reclaim().unwrap(), 1);
    assert_eq!(seg.allocations().unwrap(), []);
}

#[test]
fn full_table_and_full_segment_give_none() {
    let size = 65536 + MAX_ALLOCATIONS * 64 + 640;
    let seg = Segment::create(size).unwrap();
    let regions: Vec<_> = (0..MAX_ALLOCATIONS)
        .map(|_| seg.allocate(1).unwrap().unwrap().publish(1).unwrap())
        .collect();
    assert!(seg.allocate(1).unwrap().is_none(), "table full");
    assert_eq!(seg.allocations().unwrap().len(), MAX_ALLOCS);
    seg.free(regions[7].offset).unwrap();
    assert_eq!(
        seg.allocate(1).unwrap().unwrap().offset(),
        regions[7].offset
    );

    let seg = Segment::create(MIB).unwrap();
    assert!(
        seg.allocate(MIB).unwrap().is_none(),
        "larger than the data region"
    );
    let all = seg.allocate(MIB - 65536).unwrap().unwrap();
    assert!(seg.allocate(1).unwrap().is_none(), "segment full");
    drop(all);
    assert!(seg.allocate(1).unwrap().is_some());
}

#[test]
fn bad_pointers_are_refused() {
    let client = Segment::create(MIB).unwrap();
    let worker = Segment::attach(client.name()).unwrap();
    let ptr = publish(&client, &[7; 300]);
    let outside = [
        (65535, 10),
        (0, 10),
        (MIB as u64, 1),
        (MIB as u64 - 10, 11),
        (u64::MAX, u64::MAX),
        (ptr.offset, u64::MAX),
    ];
    for (offset, length) in outside {
        let p = ShmPointer { offset, length };
        assert!(protocol_message(worker.claim(p).unwrap_err()).contains("does not name a range"));
    }
    // Never over a region this process is writing, nor twice at once.
    let mut region = worker.allocate(1000).unwrap().unwrap();
    assert_eq!(region.offset(), 65536 + 320);
    region.as_mut_slice()[0] = 1;
    for (offset, length) in [
        (region.offset(), 1),
        (region.offset() - 8, 9),
        (region.offset() + 1000, 1),
    ] {
        let e = worker.claim(ShmPointer { offset, length }).unwrap_err();
        assert!(protocol_message(e).contains("still held"));
    }
    let held = worker.claim(ptr).unwrap();
    assert!(worker.claim(ptr).is_err());
    drop((held, region));
    assert_eq!(worker.reclaim().unwrap(), 2);

    // Inside the data region is enough (the table may be mid-update by the peer); a
    // pointer that names no allocation frees nothing.
    let ptr = publish(&client, &[7; 300]);
    for (offset, length) in [(ptr.offset, 320), (70_000, 5), (MIB as u64, 0)] {
        drop(worker.claim(ShmPointer { offset, length }).unwrap());
    }
    assert_eq!(worker.reclaim().unwrap(), 3);
    assert_eq!(worker.allocations().unwrap(), []);
}

#[test]
fn corrupt_headers_are_protocol_errors() {
    let seg = Segment::create(MIB).unwrap();
    let peer = Segment::attach(seg.name()).unwrap();
    let good = Fixed::encode_initial(MIB as u64);
    let corrupt = |what: &str| match what {
        "bad magic" => peer.write_header_for_test(0, b"XGIS"),
        "version 7" => peer.write_header_for_test(4, &7u32.to_le_bytes()),
        "data_size" => peer.write_header_for_test(8, &1u64.to_le_bytes()),
        "4095 entries" => peer.write_header_for_test(NUM_ALLOCS_AT, &4095u32.to_le_bytes()),
        "unsorted" => write_table(&peer, &[(70000, 10), (65536, 10)]),
        "overlapping" => write_table(&peer, &[(65536, 100), (65600, 10)]),
        "past the end" => write_table(&peer, &[(MIB as u64 - 8, 9)]),
        "overflow" => write_table(&peer, &[(u64::MAX - 1, 5)]),
        "in the header" => write_table(&peer, &[(24, 5)]),
        "empty" => write_table(&peer, &[(65536, 0)]),
        _ => unreachable!(),
    };
    let cases = [
        "bad magic",
        "version 7",
        "data_size",
        "4095 entries",
        "unsorted",
        "overlapping",
        "past the end",
        "overflow",
        "in the header",
        "empty",
    ];
    for what in cases {
        corrupt(what);
        assert!(seg.allocate(10).is_err(), "{what}");
        assert!(seg.free(65536).is_err(), "{what}");
        assert!(seg.allocations().is_err(), "{what}");
        assert!(seg.check().is_err(), "{what}");
        assert!(Segment::attach(seg.name()).is_err(), "{what}");
        // Repair.
        seg.write_header_for_test(0, &good);
        write_table(&seg, &[]);
        seg.check().unwrap();
    }
}

#[test]
fn truncated_segment_is_an_error_not_sigbus() {
    let client = Segment::create(4 * MIB).unwrap();
    let worker = Segment::attach(client.name()).unwrap();
    let ptr = publish(&client, &[1; 100_000]);
    let held = worker.claim(ptr).unwrap();
    let region = worker.allocate(10).unwrap().unwrap();

    for len in [4096, 65536 + 4096, 2 * MIB as u64, 8 * MIB as u64] {
        client.resize_for_test(len);
        for seg in [&client, &worker] {
            let msg = protocol_message(seg.allocate(10).unwrap_err());
            assert!(msg.contains("truncated or resized"), "{msg}");
            assert!(seg.claim(ptr).is_err());
            assert!(seg.free(ptr.offset).is_err());
            assert!(seg.allocations().is_err());
            assert!(seg.check().is_err());
        }
        assert!(Segment::attach(client.name()).is_err());
    }
    let msg = protocol_message(Segment::attach(client.name()).unwrap_err());
    assert!(msg.contains("data_size"), "{msg}");
    client.resize_for_test(1000);
    assert!(protocol_message(Segment::attach(client.name()).unwrap_err()).contains("out of range"));
    // Dropping handles over a truncated segment touches no pages.
    drop((held, region));
    assert!(worker.reclaim().is_err());
}

#[test]
fn attach_refuses_bad_names_and_missing_segments() {
    for name in [
        "",
        "/",
        ".",
        "..",
        "../etc/passwd",
        "a/b",
        ".hidden",
        "psm\0x",
        "psm x",
        &"p".repeat(300),
    ] {
        let e = Segment::attach(name).unwrap_err();
        assert!(
            protocol_message(e).contains("invalid shm segment name"),
            "{name:?}"
        );
    }
    assert!(matches!(
        Segment::attach("psm_no_such_segment"),
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
    ));
    assert!(Segment::create(65536).is_err());
    assert!(Segment::create(0).is_err());
}

#[test]
fn no_segment_of_ours_outlives_its_handles() {
    let client = Segment::create(MIB).unwrap();
    let name = client.name().to_owned();
    let worker = Segment::attach(&name).unwrap();
    let ptr = publish(&worker, b"kept alive by a buffer");
    let buffer = client.claim(ptr).unwrap().into_buffer();
    drop(client);
    // The buffer keeps the creator's mapping (and so its name) alive.
    assert!(dev_shm(&name).exists());
    assert_eq!(buffer.as_slice(), b"kept alive by a buffer");
    drop(buffer);
    assert!(!dev_shm(&name).exists(), "creator's last handle unlinks");
    // The worker's mapping survives the unlink.
    assert_eq!(
        worker.claim(ptr).unwrap().as_slice(),
        b"kept alive by a buffer"
    );
    drop(worker);

    // Unlinking early: the name goes, both mappings keep working.
    let client = Segment::create(MIB).unwrap();
    let worker = Segment::attach(client.name()).unwrap();
    client.unlink().unwrap();
    client.unlink().unwrap();
    assert!(!dev_shm(client.name()).exists());
    assert!(Segment::attach(client.name()).is_err());
    let ptr = publish(&client, b"after unlink");
    assert_eq!(worker.claim(ptr).unwrap().as_slice(), b"after unlink");
}

/// Helper process for [`killed_creator_leaves_an_orphan_that_sweep_removes`].
#[test]
#[ignore = "helper process, run by killed_creator_leaves_an_orphan_that_sweep_removes"]
fn orphan_child_process() {
    if std::env::var_os("VGI_SHM_ORPHAN_CHILD").is_none() {
        return;
    }
    let seg = Segment::create(MIB).unwrap();
    println!("SHM_NAME={}", seg.name());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(30));
}

#[test]
fn killed_creator_leaves_an_orphan_that_sweep_removes() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "transport::shm::tests::orphan_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VGI_SHM_ORPHAN_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let name = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("SHM_NAME=").map(|(_, n)| n.trim().to_owned()))
        .expect("the child announces its segment");
    let live = Segment::create(MIB).unwrap();
    assert!(
        !sweep_orphans().unwrap().contains(&name),
        "the child is alive"
    );
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    assert!(dev_shm(&name).exists(), "kill -9 left the name behind");

    let removed = sweep_orphans().unwrap();
    assert!(!dev_shm(&name).exists(), "swept: {removed:?}");
    assert!(
        dev_shm(live.name()).exists(),
        "a live segment is never swept"
    );
    assert!(!removed.iter().any(|n| n == live.name()));
}

/// Arbitrary header contents written by a "peer" never make any operation panic, crash
/// or hang; whatever parses satisfies the table invariants.
#[test]
fn random_headers_never_panic() {
    let seg = Segment::create(MIB).unwrap();
    let peer = Segment::attach(seg.name()).unwrap();
    let size = MIB as u64;
    let good = Fixed::encode_initial(size);
    let fixed = prop_oneof![
        1 => proptest::array::uniform24(any::<u8>()),
        3 => Just(good),
    ];
    let entry = (
        prop_oneof![65536..size + 100, any::<u64>(), 0..70_000u64],
        prop_oneof![1..4096u64, any::<u64>(), 0..size],
    );
    let count = prop_oneof![0..40u32, 4090..4100u32, any::<u32>()];
    let strategy = (
        fixed,
        count,
        proptest::collection::vec(entry, 0..40),
        any::<bool>(),
        0..200_000usize,
        (any::<u64>(), any::<u64>()),
    );
    let mut runner = TestRunner::new(Config::with_cases(3000));
    runner
        .run(
            &strategy,
            |(fixed, count, mut entries, sort, len, (offset, length))| {
                if sort {
                    entries.sort_unstable();
                }
                let mut table = Vec::new();
                for (o, l) in &entries {
                    table.extend_from_slice(&o.to_le_bytes());
                    table.extend_from_slice(&l.to_le_bytes());
                }
                let mut fixed: [u8; FIXED_SIZE] = fixed;
                if fixed[..16] == good[..16] {
                    let n = if count < 40 {
                        entries.len() as u32
                    } else {
                        count
                    };
                    fixed[16..20].copy_from_slice(&n.to_le_bytes());
                }
                peer.write_header_for_test(TABLE_AT, &table);
                peer.write_header_for_test(0, &fixed);

                let first = entries.first().map_or(offset, |e| e.0);
                let _ = seg.claim(ShmPointer { offset, length });
                if let Ok(r) = seg.claim(ShmPointer {
                    offset: first,
                    length: length % 5000,
                }) {
                    prop_assert!(r.as_slice().len() as u64 == length % 5000);
                    drop(r.into_buffer());
                }
                if let Ok(Some(r)) = seg.allocate(len) {
                    prop_assert!(r.offset() >= 65536 && r.offset() + r.capacity() as u64 <= size);
                }
                let _ = seg.free(first);
                let _ = seg.reclaim();
                if let Ok(table) = peer.allocations() {
                    let mut prev = 65536;
                    for (o, l) in table {
                        prop_assert!(l > 0 && o >= prev && o + l <= size);
                        prev = o + l;
                    }
                }
                let _ = Segment::attach(seg.name()).map(|s| s.allocations());
                Ok(())
            },
        )
        .unwrap();
}

/// Random pointers: accepted exactly when they lie in the data region, never a panic;
/// claims and drops never disturb the table until this side reclaims.
#[test]
fn random_pointers_are_validated() {
    let client = Segment::create(MIB).unwrap();
    let worker = Segment::attach(client.name()).unwrap();
    let mut entries = Vec::new();
    for len in [100usize, 5000, 64, 70_000, 3] {
        let region = client.allocate(len).unwrap().unwrap();
        entries.push((region.offset(), region.capacity() as u64));
        region.publish(len).unwrap();
    }
    let known: Vec<u64> = entries.iter().map(|e| e.0).collect();
    let offsets = prop_oneof![
        proptest::sample::select(known),
        any::<u64>(),
        0..MIB as u64 + 10,
    ];
    let lengths = prop_oneof![0..80_000u64, any::<u64>()];
    let mut runner = TestRunner::new(Config::with_cases(4000));
    runner
        .run(&(offsets, lengths), |(offset, length)| {
            let ptr = ShmPointer { offset, length };
            let inside = offset >= 65536
                && offset
                    .checked_add(length)
                    .is_some_and(|end| end <= MIB as u64);
            match worker.claim(ptr) {
                Ok(region) => {
                    prop_assert!(inside);
                    prop_assert_eq!(region.as_slice().len() as u64, length);
                    let buffer = region.into_buffer();
                    prop_assert_eq!(buffer.len() as u64, length);
                }
                Err(_) => prop_assert!(!inside),
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(worker.allocations().unwrap(), entries);
}
