#[vgi_rpc::service]
trait Calc {
    fn add(&self, #[vgi(arrow = "int33")] a: i64) -> vgi_rpc::Result<i64>;
}

fn main() {}
