#[vgi_rpc::service]
trait Calc {
    fn add<T: vgi_rpc::ArrowValue>(&self, a: T) -> vgi_rpc::Result<i64>;
}

fn main() {}
