#[vgi_rpc::service]
trait Calc {
    fn add(a: i64, b: i64) -> vgi_rpc::Result<i64>;
}

fn main() {}
