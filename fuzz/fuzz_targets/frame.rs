//! The frame decoder: any bytes, read as a sequence of IPC streams (as a connection
//! reads them), must give a typed error or batches, never a panic or a hang.

// `fuzz_nohook!`: a panic that escapes the target aborts (a crash), while one the
// library itself catches and turns into a typed error (arrow panics inside the decoder's
// guard) is handled as in production.
fn main() {
    afl::fuzz_nohook!(|data: &[u8]| {
        let limits = vgi_rpc::wire::Limits::default();
        let mut rest = data;
        while !rest.is_empty() {
            let Ok(mut decoder) = vgi_rpc::wire::read_stream_start(&mut rest, &limits) else {
                return;
            };
            loop {
                match vgi_rpc::wire::read_stream_item(&mut rest, &mut decoder, &limits) {
                    Ok(vgi_rpc::wire::StreamItem::Batch(batch, _)) => {
                        // Touch the data the way a handler would.
                        let _ = batch.get_array_memory_size();
                    }
                    Ok(vgi_rpc::wire::StreamItem::End) => break,
                    Err(_) => return,
                }
            }
        }
    });
}
