#[vgi_rpc::service]
trait Calc {
    fn add(&self, #[vgi(defualt = 1)] a: i64) -> vgi_rpc::Result<i64>;
}

fn main() {}
