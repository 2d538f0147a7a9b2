#[vgi_rpc::service]
trait Calc {
    fn add(&self, #[vgi(default = 1 + 2)] a: i64) -> vgi_rpc::Result<i64>;
}

fn main() {}
