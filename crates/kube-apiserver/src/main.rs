use clap::Parser;
use kube_apiserver::{options::Options, server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Options::parse_from(kube_common::flags::args());
    opts.logging.init();
    let state = server::build(&opts).await?;
    let app = server::router(state);
    let mut tasks = Vec::new();
    if opts.insecure_port != 0 {
        let addr = std::net::SocketAddr::new(opts.insecure_bind_address, opts.insecure_port);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(%addr, "serving insecurely (no authentication) on the insecure port");
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(kube_common::signals::shutdown_signal()).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}
