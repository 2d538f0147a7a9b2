#[vgi_rpc::service]
trait Calc {
    type Output;
    fn add(&self, a: i64) -> vgi_rpc::Result<i64>;
}

fn main() {}
