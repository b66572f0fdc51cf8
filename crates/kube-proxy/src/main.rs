use clap::Parser;
use kube_proxy::options::Options;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Options::parse_from(kube_common::flags::args());
    opts.logging.init();
    kube_proxy::server::run(opts).await
}
