//! Two workers behind a real nginx that alternates upstreams on every request: every
//! continuation of every stream lands on the other worker, and every answer is right.
//!
//! Needs an `nginx` binary (`VGI_NGINX`, else `nginx` on `PATH`); `scripts/test.sh`
//! installs the Debian package and runs this test explicitly (it is `#[ignore]`d so a
//! plain `cargo test` without nginx does not count it as passed).

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use vgi_rpc::server::{CallHook, CallRecord};
use vgi_rpc::transport::http::HttpOptions;
use vgi_rpc::wire::{Metadata, keys};

use crate::raw::{Reply, Worker, int_request, post, request_md, stream, tick};

const STREAMS: usize = 1000;

/// Remembers which server answered which request id.
#[derive(Default)]
struct Served(Mutex<HashMap<String, String>>);

impl CallHook for Served {
    fn on_call(&self, record: &CallRecord<'_>) {
        let mut served = self.0.lock().unwrap();
        served.insert(record.request_id.to_owned(), record.server_id.to_owned());
    }
}

struct Nginx {
    child: Child,
    _dir: tempdir::Dir,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod tempdir {
    /// A scratch directory removed on drop.
    pub(crate) struct Dir(pub(crate) std::path::PathBuf);

    impl Dir {
        pub(crate) fn new(tag: &str) -> Dir {
            let path = std::env::temp_dir().join(format!("vgi-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn start_nginx(upstreams: &[u16]) -> Nginx {
    let binary = std::env::var("VGI_NGINX").unwrap_or_else(|_| "nginx".to_owned());
    let dir = tempdir::Dir::new("nginx");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let servers: String = upstreams
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p};\n"))
        .collect();
    let d = dir.0.display();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n    access_log off;\n    client_max_body_size 0;\n\
         client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
         upstream workers {{\n{servers}    }}\n\
         server {{\n        listen 127.0.0.1:{port};\n        location / {{\n\
         proxy_pass http://workers;\n            proxy_http_version 1.1;\n\
         proxy_set_header Connection \"\";\n        }}\n    }}\n}}\n"
    );
    let conf_path = dir.0.join("nginx.conf");
    std::fs::File::create(&conf_path)
        .unwrap()
        .write_all(conf.as_bytes())
        .unwrap();
    let mut nginx = Nginx {
        child: Command::new(&binary)
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e} (set VGI_NGINX)")),
        _dir: dir,
        port,
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return nginx;
        }
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!("nginx exited at start: {status}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nginx did not start listening on {port}");
}

/// Posts through the balancer with request id `id`.
fn via(port: u16, path: &str, id: &str, body: &[u8]) -> Reply {
    let reply = post(port, path, &[("X-Request-ID", id)], body);
    assert_eq!(reply.status, 200, "{id}: {:?}", reply.exception());
    assert_eq!(reply.header("x-request-id"), Some(id));
    reply
}

fn producer(port: u16, n: usize) -> (Vec<String>, Vec<i64>) {
    let mut ids = vec![format!("p{n}-0")];
    let init = via(
        port,
        "/ConformanceService/produce_n/init",
        &ids[0],
        &int_request("produce_n", &[("count", 3)]),
    );
    let call = init.token(keys::CALL_STATE).unwrap();
    let mut cursor = init.token(keys::STREAM_STATE);
    let mut values = indices(&init);
    while let Some(c) = cursor {
        ids.push(format!("p{n}-{}", ids.len()));
        let reply = via(
            port,
            "/ConformanceService/produce_n/exchange",
            ids.last().unwrap(),
            &tick(&c, &call, &[]),
        );
        values.extend(indices(&reply));
        cursor = reply.token(keys::STREAM_STATE);
    }
    (ids, values)
}

fn indices(reply: &Reply) -> Vec<i64> {
    reply
        .batches()
        .into_iter()
        .filter(|(b, _)| b.num_rows() > 0)
        .map(|(b, _)| b.column(0).as_primitive::<Int64Type>().value(0))
        .collect()
}

fn exchange(port: u16, n: usize) -> (Vec<String>, Vec<f64>) {
    let factor = (n % 7) as f64 + 1.0;
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "factor",
            DataType::Float64,
            false,
        )])),
        vec![Arc::new(Float64Array::from(vec![factor]))],
    )
    .unwrap();
    let mut ids = vec![format!("x{n}-0")];
    let init = via(
        port,
        "/ConformanceService/exchange_scale/init",
        &ids[0],
        &stream(&params, &request_md("exchange_scale")),
    );
    let call = init.token(keys::CALL_STATE).unwrap();
    let mut cursor = init.token(keys::STREAM_STATE).unwrap();
    let mut out = Vec::new();
    for turn in 1..=3 {
        let input = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "value",
                DataType::Float64,
                false,
            )])),
            vec![Arc::new(Float64Array::from(vec![f64::from(turn)]))],
        )
        .unwrap();
        let md = Metadata::new()
            .with(keys::STREAM_STATE, cursor.clone())
            .with(keys::CALL_STATE, call.clone());
        ids.push(format!("x{n}-{turn}"));
        let reply = via(
            port,
            "/ConformanceService/exchange_scale/exchange",
            ids.last().unwrap(),
            &stream(&input, &md),
        );
        let (batch, md) = reply.batches().into_iter().next().unwrap();
        out.push(batch.column(0).as_primitive::<Float64Type>().value(0) / factor);
        cursor = md.get(keys::STREAM_STATE).unwrap().to_owned();
    }
    (ids, out)
}

#[test]
#[ignore = "needs nginx: scripts/test.sh installs it and runs this test"]
fn streams_behind_nginx_continue_on_the_other_worker() {
    let key = [0x5a; 32];
    let served = Arc::new(Served::default());
    let workers: Vec<Worker> = (0..2)
        .map(|_| {
            let builder = vgi_rpc_conformance::server_builder().hook(served.clone());
            Worker::start_with(HttpOptions::default().token_key(key), builder)
        })
        .collect();
    let nginx = start_nginx(&[workers[0].port, workers[1].port]);
    let mut requests = Vec::new();
    for stream in 0..STREAMS / 2 {
        let (ids, values) = producer(nginx.port, stream);
        assert_eq!(values, vec![0, 1, 2], "producer {stream}");
        requests.push(ids);
        let (ids, values) = exchange(nginx.port, stream);
        assert_eq!(values, vec![1.0, 2.0, 3.0], "exchange {stream}");
        requests.push(ids);
    }
    let served = served.0.lock().unwrap();
    let servers: std::collections::HashSet<&String> = served.values().collect();
    assert_eq!(servers.len(), 2, "both workers served");
    let mut continuations = 0;
    for ids in &requests {
        for pair in ids.windows(2) {
            let before = served
                .get(&pair[0])
                .unwrap_or_else(|| panic!("{} unrecorded", pair[0]));
            let after = served
                .get(&pair[1])
                .unwrap_or_else(|| panic!("{} unrecorded", pair[1]));
            assert_ne!(
                before, after,
                "{} and {} ran on the same worker",
                pair[0], pair[1]
            );
            continuations += 1;
        }
    }
    assert_eq!(continuations, STREAMS * 3);
    eprintln!("{STREAMS} streams, {continuations} continuations, each on the other worker");
}
