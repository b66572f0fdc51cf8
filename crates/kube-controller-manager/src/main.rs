use clap::Parser;
use kube_controller_manager::{app, options::Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse_from(kube_common::flags::args());
    app::run(options).await
}
