#[derive(vgi_rpc::ArrowRecord)]
struct Point {
    #[vgi(name = "X")]
    x: f64,
}

fn main() {}
