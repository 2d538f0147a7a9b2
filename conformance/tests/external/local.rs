//! [`LocalStorage`]: objects in a directory, served by the built-in loopback server to
//! URLs it signed — fetched by our reader on both paths and by the reference's
//! `fetch_url`, and refused when the signature, the path or the expiry is wrong.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use vgi_rpc::external::{
    Compression, ExternalConfig, FetchOptions, LocalStorage, Storage, UrlPolicy,
};
use vgi_rpc::wire::ExternalLocation;
use vgi_rpc::{Error, ExternalFailure};

use crate::venv;

fn object(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn reader(fetch: FetchOptions) -> ExternalConfig {
    ExternalConfig::new()
        .with_url_policy(UrlPolicy::loopback())
        .with_fetch_options(fetch.with_retries(1, Duration::from_millis(1)))
}

fn fetch_failure(result: vgi_rpc::Result<Vec<u8>>) -> (ExternalFailure, String) {
    match result {
        Err(Error::External { kind, message }) => (kind, message),
        other => panic!(
            "expected an external-storage error, got {:?}",
            other.map(|b| b.len())
        ),
    }
}

#[test]
fn local_storage_serves_signed_urls_to_both_readers() {
    let dir = tempdir("serves");
    let storage = LocalStorage::start(&dir).unwrap();
    let body = object(1 << 20);
    let url = storage.put(body.clone(), None).unwrap();
    assert!(url.starts_with(storage.base_url()), "{url}");

    // Ours: parallel ranges (64 KiB threshold, 100 KB chunks) and one GET.
    let parallel = reader(FetchOptions::default().with_parallel(64 << 10, 100_000, 4));
    assert_eq!(parallel.fetch(&url).unwrap(), body);
    let single = reader(FetchOptions::default());
    assert_eq!(single.fetch(&url).unwrap(), body);

    // Compressed through the writer's path: the key's suffix tells the encoding.
    let zstd = ExternalConfig::new()
        .with_storage(Arc::new(storage.clone()))
        .with_compression(Compression::Zstd(3));
    let zurl = zstd.store(body.clone()).unwrap();
    assert!(zurl.contains(".arrow.zst?"), "{zurl}");
    assert_eq!(parallel.fetch(&zurl).unwrap(), body);

    // The reference's reader, on its parallel path too.
    let script = format!(
        "from vgi_rpc.external_fetch import FetchConfig, fetch_url\n\
         c = FetchConfig(parallel_threshold_bytes=65536, chunk_size_bytes=100000)\n\
         print(len(fetch_url({url:?}, c)), len(fetch_url({zurl:?}, c)))"
    );
    let output = Command::new(venv().join("bin/python"))
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("{} {}", body.len(), body.len()),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A forged signature, another key under a valid signature: refused, the signature
    // never in the message.
    let (sig_at, _) = url.match_indices("X-Vgi-Signature=").next().unwrap();
    let mut forged = url.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let (kind, message) = fetch_failure(single.fetch(&forged));
    assert_eq!(kind, ExternalFailure::Fetch, "{message}");
    assert!(!message.contains(&url[sig_at..]), "{message}");
    let other = storage.put(object(10), None).unwrap();
    let swapped = format!(
        "{}{}",
        other.split_once('?').unwrap().0,
        &url[url.find('?').unwrap()..]
    );
    assert_eq!(
        fetch_failure(single.fetch(&swapped)).0,
        ExternalFailure::Fetch
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn local_storage_urls_expire() {
    let dir = tempdir("expire");
    let storage = LocalStorage::start(&dir)
        .unwrap()
        .with_ttl(Duration::from_secs(1));
    let url = storage.put(object(100), None).unwrap();
    let single = reader(FetchOptions::default());
    assert_eq!(single.fetch(&url).unwrap().len(), 100);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(fetch_failure(single.fetch(&url)).0, ExternalFailure::Fetch);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vgi-local-{tag}-{}", std::process::id()))
}
