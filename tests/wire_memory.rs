//! Memory follows what a peer sends, not what it claims: a message header claiming a huge
//! body, followed by nothing, must not make the reader allocate anywhere near the claim.
//! A counting global allocator measures the peak (this test binary has one test, so
//! nothing else allocates concurrently).

#![allow(clippy::unwrap_used, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use vgi_rpc::Error;
use vgi_rpc::wire::{self, Limits};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A stream whose batch message claims a body of `claim` bytes, then ends.
fn lying_stream(claim: i64) -> Vec<u8> {
    let column: ArrayRef = Arc::new(Int64Array::from(vec![7]));
    let batch = RecordBatch::try_from_iter([("v", column)]).unwrap();
    let honest = wire::encode_stream(&batch.schema(), &[batch]).unwrap();
    // The batch message's bodyLength (8 bytes: one int64 value) sits in its flatbuffer;
    // replace the first occurrence after the schema message with the claim.
    let schema_len =
        wire::encode_schema_message(&arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "v",
            arrow_schema::DataType::Int64,
            true,
        )]))
        .len();
    let mut bytes = honest[..schema_len].to_vec();
    let mut message = honest[schema_len..].to_vec();
    let at = message
        .windows(8)
        .position(|w| w == 8i64.to_le_bytes())
        .unwrap();
    message[at..at + 8].copy_from_slice(&claim.to_le_bytes());
    // Keep the header only: the body never arrives.
    let meta_len = u32::from_le_bytes(message[4..8].try_into().unwrap()) as usize;
    bytes.extend_from_slice(&message[..8 + meta_len]);
    bytes
}

#[test]
fn a_claimed_huge_body_costs_one_small_step() {
    let bytes = lying_stream(8 << 30);
    let limits = Limits::default();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut cursor = &bytes[..];
    let mut decoder = wire::read_stream_start(&mut cursor, &limits).unwrap();
    let result = wire::read_stream_item(&mut cursor, &mut decoder, &limits);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        matches!(result, Err(Error::Disconnected(_))),
        "a body that never arrives is a disconnect: {result:?}"
    );
    assert!(
        peak < 8 << 20,
        "peak allocation {peak} bytes for an 8 GiB claim"
    );
    // Random bytes are not mistaken for a legacy length.
    let mut noise: &[u8] = &[0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4];
    let err = wire::read_stream_start(&mut noise, &limits).unwrap_err();
    assert!(
        err.to_string()
            .contains("not an Arrow IPC stream (bad continuation marker 9abcdef0)"),
        "{err}"
    );
}
