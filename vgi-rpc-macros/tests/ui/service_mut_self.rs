#[vgi_rpc::service]
trait Calc {
    fn add(&mut self, a: i64) -> vgi_rpc::Result<i64>;
}

fn main() {}
