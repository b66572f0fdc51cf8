use flanneld::options::Options;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let opts = match Options::parse_args(std::env::args()) {
        Ok(o) => o,
        Err(e) => e.exit(),
    };
    opts.logging.init();
    match flanneld::daemon::run(opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
