#[derive(Clone, Copy, vgi_rpc::ArrowEnum)]
enum Shape {
    Circle(f64),
    Square,
}

fn main() {}
