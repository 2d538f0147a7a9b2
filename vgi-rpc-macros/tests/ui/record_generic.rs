#[derive(vgi_rpc::ArrowRecord)]
struct Pair<T> {
    left: T,
    right: T,
}

fn main() {}
