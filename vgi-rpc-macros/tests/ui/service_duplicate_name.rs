#[vgi_rpc::service]
trait Calc {
    fn add(&self) -> vgi_rpc::Result<i64>;
    #[vgi(name = "add")]
    fn plus(&self) -> vgi_rpc::Result<i64>;
}

fn main() {}
