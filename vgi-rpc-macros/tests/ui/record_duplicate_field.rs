#[derive(vgi_rpc::ArrowRecord)]
struct Point {
    x: f64,
    #[vgi(rename = "x")]
    y: f64,
}

fn main() {}
