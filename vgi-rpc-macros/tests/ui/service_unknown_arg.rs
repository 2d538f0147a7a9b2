#[vgi_rpc::service(protocl = "Calculator")]
trait Calc {
    fn add(&self, a: i64) -> vgi_rpc::Result<i64>;
}

fn main() {}
