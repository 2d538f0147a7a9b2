#[vgi_rpc::service]
trait Calc {
    async fn add(&self, a: i64) -> vgi_rpc::Result<i64>;
}

fn main() {}
