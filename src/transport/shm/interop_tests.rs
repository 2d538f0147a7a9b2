//! Interop with the reference implementation (vgi-rpc 0.52.2's `vgi_rpc.shm`): segments
//! created by either side are read, allocated in and freed by the other.
//!
//! Needs the reference venv: these tests fail (they do not skip) when it is missing; run
//! `scripts/python-venv.sh` (or point `VGI_VENV` at a venv with vgi-rpc 0.52.2).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

use super::*;

const MIB: usize = 1 << 20;

fn python() -> PathBuf {
    let venv = std::env::var_os("VGI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "the reference Python venv is missing at {}: run scripts/python-venv.sh",
        venv.display()
    );
    python
}

pub(super) struct Py {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Py {
    pub(super) fn spawn(script: &str, args: &[String]) -> Py {
        let mut child = Command::new(python())
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Py { child, out }
    }

    pub(super) fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("python said {line:?}: {e}"))
    }

    pub(super) fn send(&mut self, v: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    }

    pub(super) fn finish(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().unwrap().success(), "python failed");
    }
}

fn pairs(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const PY_CREATES: &str = r#"
import json, sys
import pyarrow as pa
from vgi_rpc.shm import ShmSegment, ShmAllocator
seg = ShmSegment.create(1 << 20)
a = seg.allocator
regions = []
for n, fill in ((1000, 1), (5000, 2), (333, 3)):
    off = a.allocate(n)
    seg.buf[off:off + n] = bytes([fill]) * n
    regions.append([off, n, fill])
batch = pa.record_batch({"x": pa.array(range(1000), pa.int64())})
ipc_off, ipc_len = seg.allocate_and_write(batch)
a.free(regions[1][0])
print(json.dumps({
    "name": seg.name, "size": seg.size, "allocs": a._read_allocs(),
    "regions": [regions[0], regions[2]], "ipc": [ipc_off, ipc_len],
    "ipc_hex": bytes(seg.buf[ipc_off:ipc_off + ipc_len]).hex(),
}), flush=True)
req = json.loads(sys.stdin.readline())
ShmAllocator(seg.buf, seg.size)  # the reference's own header validation
off, n, fill = req["written"]
print(json.dumps({
    "allocs": a._read_allocs(),
    "ok": bytes(seg.buf[off:off + n]) == bytes([fill]) * n,
}), flush=True)
seg.close()
seg.unlink()
"#;

#[test]
fn rust_attaches_to_a_reference_segment() {
    let mut py = Py::spawn(PY_CREATES, &[]);
    let made = py.recv();
    let name = made["name"].as_str().unwrap();
    let worker = Segment::attach(name).unwrap();
    assert_eq!(worker.size(), made["size"].as_u64().unwrap());
    assert_eq!(worker.allocations().unwrap(), pairs(&made["allocs"]));

    let mut held = made["regions"].as_array().unwrap().iter().map(|r| {
        let (offset, length) = (r[0].as_u64().unwrap(), r[1].as_u64().unwrap());
        let region = worker.claim(ShmPointer { offset, length }).unwrap();
        let fill = r[2].as_u64().unwrap();
        assert!(region.as_slice().iter().all(|&b| u64::from(b) == fill));
        region
    });
    let (first, still_held) = (held.next().unwrap(), held.next().unwrap());
    // The reference's IPC stream, zero-copy (at an offset the reference chose).
    let ipc = pairs(&json!([made["ipc"]]))[0];
    let region = worker
        .claim(ShmPointer {
            offset: ipc.0,
            length: ipc.1,
        })
        .unwrap();
    assert_eq!(region.as_slice(), unhex(made["ipc_hex"].as_str().unwrap()));
    assert_eq!(
        region.as_slice()[..4],
        [0xff; 4],
        "an IPC continuation marker"
    );
    let buffer = region.into_buffer();

    // The sweep never touches another implementation's live segment.
    #[cfg(target_os = "linux")]
    {
        let removed = sweep_orphans().unwrap();
        assert!(!removed.iter().any(|n| n == name));
        assert!(Path::new("/dev/shm").join(name).exists());
    }

    // We allocate (first fit, 64-aligned, in the gap the reference left) and free as the
    // reader: the region at 65536 and the IPC region (its buffer) are dropped, the other
    // region is still held.
    let mut region = worker.allocate(2000).unwrap().unwrap();
    assert_eq!(region.offset(), 66560);
    region.as_mut_slice()[..2000].fill(7);
    let ptr = region.publish(2000).unwrap();
    assert_eq!(first.pointer().offset, 65536);
    drop((first, buffer));
    assert_eq!(worker.reclaim().unwrap(), 2);

    py.send(json!({"written": [ptr.offset, ptr.length, 7]}));
    let seen = py.recv();
    assert_eq!(seen["ok"], true);
    assert_eq!(pairs(&seen["allocs"]), worker.allocations().unwrap());
    assert_eq!(pairs(&seen["allocs"]), [(66560, 2048), (71536, 333)]);
    py.finish();
    drop(still_held);
}

const PY_ATTACHES: &str = r#"
import json, sys
import pyarrow as pa
from vgi_rpc.shm import ShmSegment, ShmAllocator
name, size, spec = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
seg = ShmSegment.attach(name, size, track=False)  # validates magic, version, data_size
a = seg.allocator
ok = all(bytes(seg.buf[o:o + n]) == bytes([f]) * n for o, n, f in spec["regions"])
# Replay our reservations with the reference allocator: the header bytes must be equal.
ref = bytearray(seg.size)
ShmAllocator.initialize(memoryview(ref), seg.size)
ra = ShmAllocator(memoryview(ref), seg.size)
for n in spec["reserve"]:
    ra.allocate(n)
for o in spec["free"]:
    ra.free(o)
k = 24 + 16 * ra.num_allocs
same = bytes(ref[:k]) == bytes(seg.buf[:k])
off = a.allocate(4000)
seg.buf[off:off + 4000] = b"\x09" * 4000
batch = pa.record_batch({"s": pa.array(["x" * 100] * 100)})
ipc_off, ipc_len = seg.allocate_and_write(batch)
print(json.dumps({
    "ok": ok, "same_header": same, "allocs": a._read_allocs(), "mine": [off, 4000],
    "ipc": [ipc_off, ipc_len], "ipc_hex": bytes(seg.buf[ipc_off:ipc_off + ipc_len]).hex(),
}), flush=True)
seg.close()
"#;

#[test]
fn reference_attaches_to_a_rust_segment() {
    let client = Segment::create(MIB).unwrap();
    let mut regions = Vec::new();
    let mut reserve = Vec::new();
    for (len, fill) in [(1000usize, 1u8), (5000, 2), (300, 3)] {
        let mut region = client.allocate(len).unwrap().unwrap();
        reserve.push(region.capacity());
        region.as_mut_slice()[..len].fill(fill);
        let ptr = region.publish(len).unwrap();
        regions.push(json!([ptr.offset, ptr.length, fill]));
    }
    let freed = regions[1][0].as_u64().unwrap();
    client.free(freed).unwrap();
    regions.remove(1);
    let spec = json!({"regions": regions, "reserve": reserve, "free": [freed]});

    let mut py = Py::spawn(
        PY_ATTACHES,
        &[
            client.name().to_owned(),
            client.size().to_string(),
            spec.to_string(),
        ],
    );
    let seen = py.recv();
    py.finish();
    assert_eq!(seen["ok"], true, "the reference read our bytes");
    assert_eq!(seen["same_header"], true, "byte-identical header and table");
    assert_eq!(pairs(&seen["allocs"]), client.allocations().unwrap());

    let mine = pairs(&json!([seen["mine"]]))[0];
    assert_eq!(
        mine.0, 66560,
        "the reference's first fit took the gap we freed"
    );
    let region = client
        .claim(ShmPointer {
            offset: mine.0,
            length: mine.1,
        })
        .unwrap();
    assert!(region.as_slice().iter().all(|&b| b == 9));
    drop(region);

    let ipc = pairs(&json!([seen["ipc"]]))[0];
    let region = client
        .claim(ShmPointer {
            offset: ipc.0,
            length: ipc.1,
        })
        .unwrap();
    assert_eq!(region.as_slice(), unhex(seen["ipc_hex"].as_str().unwrap()));
    drop(region);
    assert_eq!(client.reclaim().unwrap(), 2);
    assert_eq!(client.allocations().unwrap(), [(65536, 1024), (71616, 320)]);

    let name = client.name().to_owned();
    drop(client);
    assert!(!Path::new("/dev/shm").join(name).exists(), "no leak");
}
