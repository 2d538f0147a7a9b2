#[vgi_rpc::service]
trait Calc {
    fn reset(&self);
}

fn main() {}
