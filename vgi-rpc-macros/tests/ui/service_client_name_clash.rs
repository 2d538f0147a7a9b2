#[vgi_rpc::service]
trait Clash {
    fn connect(&self, address: String) -> vgi_rpc::Result<()>;
    fn join(&self, #[vgi(default = "-")] sep: String) -> vgi_rpc::Result<String>;
    fn join_with_defaults(&self) -> vgi_rpc::Result<String>;
}

fn main() {}
