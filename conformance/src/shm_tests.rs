//! Shared memory is *used*, end to end, between our client and our worker: large results,
//! requests, producer outputs and exchange inputs travel as pointer batches, the client's
//! batches are zero-copy views of the mapping, every region is freed once its batches
//! drop, and the segment's name is gone from `/dev/shm` as soon as the worker attached.
//! Also: a worker without shared memory, and a segment too small, fall back to inline.
//!
//! The worker runs in-process (a Unix-socket listener, or a pipe pair served with the
//! shared-memory host), so the segment is mapped twice in this process, as it would be
//! once in each of two.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, ensure};
use arrow_array::{Array, ArrayRef, Float64Array, LargeBinaryArray, RecordBatch};
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Link, Target};
use vgi_rpc::server::{ConnectionInfo, Peer, serve_connection, serve_connection_with};
use vgi_rpc::transport::shm::{Segment, ShmChannel, ShmHost, segment_of};
use vgi_rpc::transport::{Address, ServeOptions, Shutdown, UnixSocketListener, serve_listener};
use vgi_rpc::wire::keys;

const MIB: usize = 1 << 20;

fn target() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

fn server() -> Result<vgi_rpc::Server> {
    Ok(crate::server_builder().build()?)
}

/// A client over an in-process pipe pair; the worker attaches segments iff `shm_host`.
fn pipe_client(shm_host: bool, segment_size: usize) -> Result<Client> {
    let (client_read, server_write) = std::io::pipe()?;
    let (server_read, client_write) = std::io::pipe()?;
    let server = server()?;
    std::thread::spawn(move || {
        let info = ConnectionInfo::new(Peer::pipe());
        if shm_host {
            let info = info.with_side_channels(Arc::new(ShmHost));
            serve_connection_with(&server, info, server_read, server_write)
        } else {
            serve_connection(&server, server_read, server_write)
        }
    });
    let link =
        Link::new(client_read, client_write).with_side_channel(ShmChannel::create(segment_size)?);
    Ok(Client::from_link(link, ConnectOptions::default()))
}

/// A Unix-socket worker (the listener installs the shared-memory host) and a client
/// connected with `ConnectOptions::with_shm`.
/// Serves the conformance worker on a Unix socket in `dir`; returns its path and the
/// shutdown that stops it.
fn unix_worker(dir: &Path) -> Result<(PathBuf, Shutdown)> {
    let path = dir.join("w.sock");
    let listener = UnixSocketListener::bind(&path)?;
    let shutdown = Shutdown::new()?;
    let stop = shutdown.clone();
    let server = server()?;
    std::thread::spawn(move || serve_listener(&server, &listener, &ServeOptions::default(), &stop));
    Ok((path, shutdown))
}

fn unix_client(dir: &Path) -> Result<(Client, Shutdown)> {
    let (path, shutdown) = unix_worker(dir)?;
    let options = ConnectOptions::default().with_shm(64 * MIB);
    Ok((
        Client::connect_with(&Address::Unix(path), options)?,
        shutdown,
    ))
}

fn scratch(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("vgi-shm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn segment(client: &Client) -> Result<Segment> {
    let side = client
        .side_channel()
        .context("the worker declined shared memory")?;
    segment_of(&**side)
        .cloned()
        .context("not a shared-memory channel")
}

/// Every buffer of every column lies inside the mapping.
fn zero_copy(batch: &RecordBatch, segment: &Segment) -> bool {
    batch.columns().iter().all(|c| {
        c.to_data()
            .buffers()
            .iter()
            .all(|b| b.is_empty() || segment.contains_address(b.as_ptr() as usize))
    })
}

fn echo_large_binary(client: &mut Client, len: usize) -> Result<vgi_rpc::client::UnaryResult> {
    let payload: ArrayRef = Arc::new(LargeBinaryArray::from_iter_values([vec![0xa5u8; len]]));
    let params = RecordBatch::try_from_iter([("value", payload)])?;
    let options = CallOptions::default();
    Ok(client.call(&target(), "echo_large_binary", &params, &options)?)
}

fn check_echo_4mib(client: &mut Client) -> Result<()> {
    let answer = echo_large_binary(client, 4 * MIB)?;
    let segment = segment(client)?;
    ensure!(
        answer.metadata.get(keys::SHM_SOURCE) == Some(segment.name()),
        "the 4 MiB result did not come through shared memory: {:?}",
        answer.metadata
    );
    let batch = answer.batch.context("no result")?;
    ensure!(
        zero_copy(&batch, &segment),
        "the result was copied out of the mapping"
    );
    let values = batch
        .column(0)
        .as_any()
        .downcast_ref::<LargeBinaryArray>()
        .context("large_binary result")?;
    ensure!(values.value(0).len() == 4 * MIB && values.value(0).iter().all(|&b| b == 0xa5));
    // The worker freed the request's region before its answer ended; the result's is
    // ours to free, and goes at our next turn boundary once its buffers drop.
    ensure!(
        segment.allocations()?.len() == 1,
        "{:?}",
        segment.allocations()?
    );
    drop(batch);
    client.side_channel().context("side channel")?.reclaim()?;
    ensure!(
        segment.allocations()?.is_empty(),
        "{:?}",
        segment.allocations()?
    );
    // The worker attached on the first request naming the segment: the name is gone.
    ensure!(
        !Path::new("/dev/shm").join(segment.name()).exists(),
        "the segment's name outlived the first answer"
    );
    Ok(())
}

#[test]
fn a_4mib_result_arrives_as_a_zero_copy_pointer_over_a_pipe() -> Result<()> {
    let mut client = pipe_client(true, 64 * MIB)?;
    check_echo_4mib(&mut client)?;
    // Small results stay inline.
    let answer = echo_large_binary(&mut client, 1024)?;
    ensure!(!answer.metadata.contains(keys::SHM_SOURCE));
    check_echo_4mib(&mut client)
}

#[test]
fn a_4mib_result_arrives_as_a_zero_copy_pointer_over_a_unix_socket() -> Result<()> {
    let dir = scratch("unix")?;
    let (mut client, shutdown) = unix_client(&dir)?;
    check_echo_4mib(&mut client)?;
    drop(client);
    shutdown.trigger();
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

#[test]
fn typed_clients_take_shared_memory_through_connect_with() -> Result<()> {
    let dir = scratch("typed")?;
    let (path, shutdown) = unix_worker(&dir)?;
    let options = ConnectOptions::default().with_shm(16 * MIB);
    let mut typed =
        crate::ConformanceClient::connect_with(&format!("unix:{}", path.display()), options)?;
    let echoed = typed.echo_large_binary(vgi_rpc::schema::LargeBinary(vec![7; 2 * MIB]))?;
    ensure!(echoed.0.len() == 2 * MIB && echoed.0.iter().all(|&b| b == 7));
    let segment = segment(typed.client())?;
    // The typed result was converted to a Vec (a copy); the region is free again after
    // the client's next turn boundary.
    typed.client().side_channel().context("side")?.reclaim()?;
    ensure!(
        segment.allocations()?.is_empty(),
        "{:?}",
        segment.allocations()?
    );
    drop(typed);
    shutdown.trigger();
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

#[test]
fn producer_outputs_and_exchange_inputs_travel_through_the_segment() -> Result<()> {
    let mut client = pipe_client(true, 64 * MIB)?;
    let params = RecordBatch::try_from_iter([
        (
            "rows_per_batch",
            Arc::new(arrow_array::Int64Array::from(vec![100_000])) as ArrayRef,
        ),
        (
            "batch_count",
            Arc::new(arrow_array::Int64Array::from(vec![3])) as ArrayRef,
        ),
    ])?;
    let options = CallOptions::default();
    let mut stream = client.open_stream(&target(), "produce_large_batches", &params, &options)?;
    let mut seen = 0;
    while let Some((batch, md)) = stream.tick_with_metadata(Default::default())? {
        ensure!(md.contains(keys::SHM_SOURCE), "batch {seen} came inline");
        ensure!(batch.num_rows() == 100_000);
        seen += 1;
    }
    stream.close()?;
    ensure!(seen == 3);
    let segment = segment(&client)?;

    let factor = RecordBatch::try_from_iter([(
        "factor",
        Arc::new(Float64Array::from(vec![2.0])) as ArrayRef,
    )])?;
    let mut stream = client.open_stream(&target(), "exchange_scale", &factor, &options)?;
    let input = RecordBatch::try_from_iter([(
        "value",
        Arc::new(Float64Array::from_iter_values((0..200_000).map(f64::from))) as ArrayRef,
    )])?;
    for _ in 0..3 {
        let (out, md) = stream.exchange_with_metadata(&input, Default::default())?;
        ensure!(
            md.contains(keys::SHM_SOURCE),
            "the exchange output came inline"
        );
        ensure!(zero_copy(&out, &segment));
        let out = out
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .context("f64")?;
        ensure!(out.len() == 200_000 && out.value(7) == 14.0);
    }
    stream.close()?;
    client.side_channel().context("side")?.reclaim()?;
    ensure!(
        segment.allocations()?.is_empty(),
        "{:?}",
        segment.allocations()?
    );
    Ok(())
}

#[test]
fn a_worker_without_shared_memory_declines_and_batches_go_inline() -> Result<()> {
    let mut client = pipe_client(false, 8 * MIB)?;
    let answer = echo_large_binary(&mut client, 4 * MIB)?;
    ensure!(
        client.side_channel().is_none(),
        "the offer was not declined"
    );
    ensure!(!answer.metadata.contains(keys::SHM_SOURCE));
    ensure!(answer.batch.context("result")?.column(0).len() == 1);
    Ok(())
}

#[test]
fn a_full_segment_falls_back_to_inline() -> Result<()> {
    // 1 MiB of data region: neither the 4 MiB request nor its result fits.
    let mut client = pipe_client(true, MIB + (64 << 10))?;
    let answer = echo_large_binary(&mut client, 4 * MIB)?;
    ensure!(
        client.side_channel().is_some(),
        "the worker should have accepted"
    );
    ensure!(!answer.metadata.contains(keys::SHM_SOURCE));
    let batch = answer.batch.context("result")?;
    let values = batch
        .column(0)
        .as_any()
        .downcast_ref::<LargeBinaryArray>()
        .context("bin")?;
    ensure!(values.value(0).len() == 4 * MIB);
    // A batch that fits still goes through.
    let answer = echo_large_binary(&mut client, 512 << 10)?;
    ensure!(answer.metadata.contains(keys::SHM_SOURCE));
    Ok(())
}
