// Every problem is reported, each once, at its own span.
#[vgi_rpc::service]
trait Calc {
    fn add(&self, #[vgi(arrow = "int")] a: i64) -> i64;
    fn sub(&mut self, a: i64) -> vgi_rpc::Result<i64>;
}

fn main() {}
