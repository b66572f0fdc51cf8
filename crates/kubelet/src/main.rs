use clap::Parser;
use kubelet::options::Options;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse_from(kube_common::flags::args());
    options.logging.init();
    let settings = options.settings()?;
    kubelet::app::run(settings).await
}
