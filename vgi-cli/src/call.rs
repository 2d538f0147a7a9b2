//! `vgi-rpc call`: find the method through reflection, build its parameters from the
//! command line, call it, and write what comes back.

use std::io::IsTerminal;

use arrow_array::RecordBatch;
use vgi_rpc::client::{
    CallOptions, Client, MethodDescription, MethodKind, ProtocolDescription, Target,
};

use crate::args::params_batch;
use crate::describe;
use crate::failure::{Failure, Outcome};
use crate::input::{JsonLines, read_ipc_batches};
use crate::output::Sink;
use crate::progress::Progress;

/// What `call` was asked to do, beyond the address.
pub(crate) struct CallRequest {
    /// `METHOD` or `PROTOCOL.METHOD`.
    pub method: String,
    pub args: Vec<String>,
    /// Stop a producer after this many rows (the stream is cancelled in-band).
    pub limit: Option<u64>,
    /// Exchange input file; stdin JSON lines when `None`.
    pub input: Option<String>,
    pub progress: bool,
}

/// Runs the call.
pub(crate) fn run(
    client: &mut Client,
    options: &CallOptions,
    request: &CallRequest,
    sink: &mut Sink,
) -> Outcome {
    let (protocol, method) = find_method(client, options, &request.method)?;
    let params = params_batch(&method, &request.args)?;
    let target = protocol.target();
    match method.kind {
        MethodKind::Unary => {
            let answer = client.call(&target, &method.name, &params, options)?;
            match answer.batch {
                Some(batch) => sink.unary(&batch),
                None => sink.finish(),
            }
        }
        _ => stream(client, options, &target, &method, &params, request, sink),
    }
}

/// Finds the method: in the named protocol, or in the first application protocol that has
/// it.
fn find_method(
    client: &mut Client,
    options: &CallOptions,
    spec: &str,
) -> Outcome<(ProtocolDescription, MethodDescription)> {
    let listing = describe::list_protocols(client, options)?;
    let (wanted_protocol, name) = match spec.rsplit_once('.') {
        Some((p, m)) => (Some(p), m),
        None => (None, spec),
    };
    let candidates: Vec<String> = listing
        .protocols
        .iter()
        .filter(|p| match wanted_protocol {
            Some(w) => p.protocol == w,
            None => !p.is_framework(),
        })
        .map(|p| p.protocol.clone())
        .collect();
    if candidates.is_empty() {
        let hosted: Vec<&str> = listing
            .protocols
            .iter()
            .map(|p| p.protocol.as_str())
            .collect();
        return Err(Failure::usage(format!(
            "the server hosts no protocol `{}`; hosted: {}",
            wanted_protocol.unwrap_or("(application)"),
            hosted.join(", ")
        )));
    }
    let mut searched = Vec::new();
    for protocol in candidates {
        let description = client.describe_protocol(&protocol, options)?;
        if let Some(method) = description.methods.iter().find(|m| m.name == name) {
            let method = method.clone();
            return Ok((description, method));
        }
        searched.push(description);
    }
    let available: Vec<String> = searched
        .iter()
        .flat_map(|p| p.methods.iter().map(|m| m.name.clone()))
        .collect();
    Err(Failure::usage(format!(
        "unknown method `{spec}`; available: {}",
        available.join(", ")
    )))
}

fn stream(
    client: &mut Client,
    options: &CallOptions,
    target: &Target,
    method: &MethodDescription,
    params: &RecordBatch,
    request: &CallRequest,
    sink: &mut Sink,
) -> Outcome {
    let mut stream = if method.header.is_some() {
        client.open_stream_with_header(target, &method.name, params, options)?
    } else {
        client.open_stream(target, &method.name, params, options)?
    };
    if let Some(header) = stream.header() {
        sink.header(&header.clone())?;
    }
    let mut progress = Progress::new(request.progress);
    let outcome = if method.kind == MethodKind::Exchange {
        let inputs: Box<dyn Iterator<Item = Outcome<RecordBatch>>> = match &request.input {
            Some(path) => Box::new(read_ipc_batches(path)?.into_iter().map(Ok)),
            None => {
                if std::io::stdin().is_terminal() {
                    eprintln!("reading exchange input as JSON lines from stdin (Ctrl-D ends)");
                }
                Box::new(JsonLines::new(std::io::stdin().lock()))
            }
        };
        let mut result = Ok(());
        for input in inputs {
            let output = input.and_then(|batch| Ok(stream.exchange(&batch)?));
            match output.and_then(|out| {
                progress.add(&out);
                sink.batch(&out)
            }) {
                Ok(()) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        progress.clear();
        match result {
            Ok(()) => stream.close().map_err(Failure::from),
            Err(e) => Err(e),
        }
    } else {
        let mut rows = 0u64;
        let mut cancelled = request.limit == Some(0);
        let mut result = Ok(());
        while !cancelled {
            let next = match stream.tick() {
                Ok(next) => next,
                Err(e) => {
                    result = Err(Failure::from(e));
                    break;
                }
            };
            let Some(mut batch) = next else { break };
            if let Some(limit) = request.limit {
                let left = limit.saturating_sub(rows);
                if (batch.num_rows() as u64) >= left {
                    batch = batch.slice(0, usize::try_from(left).unwrap_or(usize::MAX));
                    cancelled = true;
                }
            }
            rows += batch.num_rows() as u64;
            progress.add(&batch);
            if let Err(e) = sink.batch(&batch) {
                // The output is gone (or broken): stop the producer in-band rather than
                // let the close drain a stream that may never end.
                let _ = stream.cancel();
                progress.clear();
                return Err(e);
            }
            if cancelled {
                break;
            }
        }
        progress.clear();
        match result {
            Ok(()) if cancelled => stream.cancel().map_err(Failure::from),
            Ok(()) => stream.close().map_err(Failure::from),
            Err(e) => Err(e),
        }
    };
    outcome.and_then(|()| sink.finish())
}
