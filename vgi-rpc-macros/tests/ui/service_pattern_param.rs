#[vgi_rpc::service]
trait Calc {
    fn add(&self, (a, b): (i64, i64)) -> vgi_rpc::Result<i64>;
}

fn main() {}
