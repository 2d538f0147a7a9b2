#[vgi_rpc::service]
struct Calc;

fn main() {}
