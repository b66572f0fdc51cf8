use clap::Parser;
use kube_dns::options::Options;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Options::parse_from(kube_common::flags::args());
    // hickory-server logs every query at info; keep that for -v=4 and up.
    if std::env::var_os("RUST_LOG").is_none() && opts.logging.verbosity < 4 {
        let level = if opts.logging.verbosity >= 2 {
            "debug"
        } else {
            "info"
        };
        std::env::set_var(
            "RUST_LOG",
            format!("{level},hickory_server=warn,h2=info,tower=info,hyper=info"),
        );
    }
    opts.logging.init();
    kube_dns::server::run(opts).await
}
