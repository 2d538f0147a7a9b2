//! `vgi-rpc-allocs`: heap allocations per call, client and server counted apart.
//!
//! A counting global allocator tags every allocation with the role of the thread that
//! made it. The server runs the benchmark worker's services on one thread
//! (`serve_connection` over a Unix socket pair, the byte-stream engine every socket and
//! pipe transport uses); the client calls it from the main thread through the dynamic
//! [`Client`]. After a warm-up, each row is the difference of the two counters over
//! `CALLS` calls, divided by `CALLS`.
//!
//! ```text
//! vgi-rpc-allocs            # noop, small args, 1-row exchange turn
//! ```
//!
//! A separate binary so the counting allocator never sits under the timed benchmarks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use vgi_rpc::client::{Client, ConnectOptions, Link};
use vgi_rpc_bench::scenario::{self, Params};
use vgi_rpc_bench::service::{BenchServer, BenchService};

/// Which side a thread works for.
#[derive(Clone, Copy)]
enum Role {
    Other = 0,
    Client = 1,
    Server = 2,
}

thread_local! {
    static ROLE: Cell<Role> = const { Cell::new(Role::Other) };
    /// Set while a trace is being captured (the capture allocates too).
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// `--trace`: print where each allocation of one traced call comes from.
static TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Allocations (including reallocations) per role.
static COUNTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// Bytes asked for per role.
static BYTES: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

struct Counting;

fn count(size: usize) {
    // `try_with`: a thread's last frees run after its locals are gone.
    let role = ROLE.try_with(Cell::get).unwrap_or(Role::Other) as usize;
    COUNTS[role].fetch_add(1, Ordering::Relaxed);
    BYTES[role].fetch_add(size as u64, Ordering::Relaxed);
    if role != 0
        && TRACE.load(Ordering::Relaxed)
        && TRACING.try_with(|t| !t.replace(true)).unwrap_or(false)
    {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        let frames: Vec<&str> = trace
            .lines()
            .filter(|l| {
                l.contains(": ")
                    && !l.contains("alloc")
                    && !l.contains("backtrace")
                    && !l.contains("count")
            })
            .map(|l| l.split(": ").nth(1).unwrap_or(l))
            .take(6)
            .collect();
        eprintln!("[{role}] {size} B: {}", frames.join(" <- "));
        TRACING.with(|t| t.set(false));
    }
}

// SAFETY: every method forwards to `System` unchanged; counting touches only atomics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Calls per row (after as many warm-up calls).
const CALLS: u64 = 10_000;

fn snapshot() -> [(u64, u64); 3] {
    std::array::from_fn(|i| {
        (
            COUNTS[i].load(Ordering::Relaxed),
            BYTES[i].load(Ordering::Relaxed),
        )
    })
}

/// Runs `op` `CALLS` times after a warm-up; returns (client, server) allocations and
/// bytes per call.
fn per_call(mut op: impl FnMut() -> vgi_rpc::Result<()>) -> anyhow::Result<[(f64, f64); 2]> {
    for _ in 0..CALLS {
        op()?;
    }
    let before = snapshot();
    for _ in 0..CALLS {
        op()?;
    }
    let after = snapshot();
    let per = |role: Role| {
        let i = role as usize;
        (
            (after[i].0 - before[i].0) as f64 / CALLS as f64,
            (after[i].1 - before[i].1) as f64 / CALLS as f64,
        )
    };
    Ok([per(Role::Client), per(Role::Server)])
}

fn main() -> anyhow::Result<()> {
    let server = vgi_rpc_conformance::server_builder()
        .service(BenchServer::new(BenchService::default()))
        .build()?;
    let (ours, theirs) = UnixStream::pair()?;
    let serving = std::thread::spawn(move || {
        ROLE.with(|r| r.set(Role::Server));
        let reader = theirs.try_clone()?;
        vgi_rpc::server::serve_connection(&server, reader, theirs)
    });
    ROLE.with(|r| r.set(Role::Client));
    let p = Params::new()?;
    let reader = ours.try_clone()?;
    let mut client = Client::from_link(Link::new(reader, ours), ConnectOptions::default());
    println!(
        "| call (unix socket pair, one thread per side) | client allocs/call | client bytes/call | server allocs/call | server bytes/call |"
    );
    println!("|---|---:|---:|---:|---:|");
    let rows: [(&str, [(f64, f64); 2]); 2] = [
        ("void_noop", per_call(|| scenario::noop(&mut client, &p))?),
        (
            "echo_string (small args)",
            per_call(|| scenario::small_args(&mut client, &p))?,
        ),
    ];
    for (name, [(ca, cb), (sa, sb)]) in rows {
        println!("| {name} | {ca:.1} | {cb:.0} | {sa:.1} | {sb:.0} |");
    }
    // `--trace [small]`: where each allocation of one (warm) noop or echo_string call
    // comes from, on stderr.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--trace") {
        let small = args.iter().any(|a| a == "small");
        let mut call = || {
            if small {
                scenario::small_args(&mut client, &p)
            } else {
                scenario::noop(&mut client, &p)
            }
        };
        call()?;
        TRACE.store(true, Ordering::Relaxed);
        call()?;
        TRACE.store(false, Ordering::Relaxed);
    }
    drop(client);
    serving
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))?
        .context("serving")?;
    Ok(())
}
