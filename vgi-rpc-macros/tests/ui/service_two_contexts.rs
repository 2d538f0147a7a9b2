use vgi_rpc::CallContext;

#[vgi_rpc::service]
trait Calc {
    fn add(&self, ctx: &CallContext, a: i64, again: &CallContext) -> vgi_rpc::Result<i64>;
}

fn main() {}
