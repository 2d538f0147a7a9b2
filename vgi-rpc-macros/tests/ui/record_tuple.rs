#[derive(vgi_rpc::ArrowRecord)]
struct Point(f64, f64);

fn main() {}
