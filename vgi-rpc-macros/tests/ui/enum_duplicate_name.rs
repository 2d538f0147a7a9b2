#[derive(Clone, Copy, vgi_rpc::ArrowEnum)]
enum Status {
    Active,
    #[vgi(rename = "Active")]
    Enabled,
}

fn main() {}
