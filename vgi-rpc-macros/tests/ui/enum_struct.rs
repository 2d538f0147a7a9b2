#[derive(Clone, Copy, vgi_rpc::ArrowEnum)]
struct Shape;

fn main() {}
