//! Validation levels end to end: a cheaper level applies to an `exec:` worker (a process
//! the client spawned) and is ignored on any other link, where a malformed batch is always
//! a typed error.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::Schema;
use vgi_rpc::Error;
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Link, Target};
use vgi_rpc::transport::Address;
use vgi_rpc::wire::{Validation, encode_stream};

/// An answer stream whose one string batch holds invalid UTF-8.
fn bad_answer() -> Vec<u8> {
    let column: ArrayRef = Arc::new(StringArray::from(vec!["ab", "cd"]));
    let batch = RecordBatch::try_from_iter([("result", column)]).unwrap();
    let mut bytes = encode_stream(&batch.schema(), &[batch]).unwrap();
    let at = bytes.windows(4).position(|w| w == b"abcd").unwrap();
    bytes[at] = 0xff;
    bytes
}

fn none() -> ConnectOptions {
    // SAFETY (test): the unchecked batch is only inspected through its raw buffers.
    unsafe { ConnectOptions::default().with_validation(Validation::None) }
}

fn call(client: &mut Client) -> vgi_rpc::Result<RecordBatch> {
    let params = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let answer = client.call(
        &Target::new("P", None),
        "m",
        &params,
        &CallOptions::default(),
    )?;
    Ok(answer.batch.expect("a result batch"))
}

#[test]
fn a_cheaper_level_applies_to_an_exec_worker() {
    let dir = std::env::temp_dir().join(format!("vgi-validation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let answer = dir.join("answer.bin");
    std::fs::write(&answer, bad_answer()).unwrap();
    let command = format!("cat {}; exec cat >/dev/null", answer.display());
    let address = Address::Exec(vec!["sh".into(), "-c".into(), command]);

    let mut trusted = Client::connect_with(&address, none()).unwrap();
    let batch = call(&mut trusted).unwrap();
    let values = batch.column(0).to_data().buffers()[1].clone();
    assert_eq!(
        &values.as_slice()[..4],
        &[0xff, b'b', b'c', b'd'],
        "unchecked, as sent"
    );

    let mut checked = Client::connect_with(&address, ConnectOptions::default()).unwrap();
    assert!(matches!(call(&mut checked), Err(Error::InvalidMessage(_))));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn any_other_link_is_always_fully_validated() {
    let (client_end, mut server_end) = std::os::unix::net::UnixStream::pair().unwrap();
    let serving = std::thread::spawn(move || {
        use std::io::{Read, Write};
        server_end.write_all(&bad_answer()).unwrap();
        let mut sink = Vec::new();
        let _ = server_end.read_to_end(&mut sink);
    });
    let link = Link::new(client_end.try_clone().unwrap(), client_end);
    let mut client = Client::from_link(link, none());
    let err = call(&mut client).unwrap_err();
    assert!(matches!(err, Error::InvalidMessage(_)), "{err:?}");
    drop(client);
    serving.join().unwrap();
}
