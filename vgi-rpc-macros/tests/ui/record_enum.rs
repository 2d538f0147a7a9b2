#[derive(vgi_rpc::ArrowRecord)]
enum Shape {
    Circle,
}

fn main() {}
