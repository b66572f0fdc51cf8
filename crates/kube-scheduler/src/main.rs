use clap::Parser;
use kube_scheduler::options::Options;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Options::parse_from(kube_common::flags::args());
    opts.logging.init();
    kube_scheduler::server::run(opts).await
}
