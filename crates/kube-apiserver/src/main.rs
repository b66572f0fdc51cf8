use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
/// The apiserver allocates and frees many small JSON nodes per request; mimalloc
/// spends far less time there than glibc's malloc (measured with perf).
#[global_allocator]
static GLOBAL: kube_apiserver::malloc::MiMalloc = kube_apiserver::malloc::MiMalloc;

use kube_apiserver::{options::Options, server, tls};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("gen-certs") {
        let cfg = kube_apiserver::pki::parse_args(&args[2..])?;
        for f in kube_apiserver::pki::generate(&cfg)? {
            println!("wrote {}", f.display());
        }
        return Ok(());
    }
    let opts = Options::parse_from(kube_common::flags::args());
    opts.logging.init();
    // No transparent huge pages for this process: every 2 MiB page mimalloc's heap
    // grows into is cleared whole on first touch, and under a stream of writes that
    // clearing was a fifth of the apiserver's CPU (perf: `clear_page_erms` under
    // `do_huge_pmd_anonymous_page`); with 4 KiB pages it is a few percent. The flag is
    // per process (mimalloc's `MIMALLOC_ALLOW_THP=0` sets the same).
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(error = %e, "cannot disable transparent huge pages");
    }
    let state = server::build(&opts).await?;
    let authn = state.authenticator.clone();
    let app = server::router(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // Both listeners are bound (and the serving certificate loaded or generated)
    // before either serves, so a client that sees /readyz on one port finds the
    // other one accepting too.
    let insecure = if opts.insecure_port != 0 {
        let addr = SocketAddr::new(opts.insecure_bind_address, opts.insecure_port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the insecure port {addr}"))?;
        Some((addr, listener))
    } else {
        None
    };
    let secure = if opts.secure_port != 0 {
        let addr = SocketAddr::new(opts.bind_address, opts.secure_port);
        let config = tls::server_config(&opts)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the secure port {addr}"))?;
        Some((addr, listener, config))
    } else {
        None
    };
    let mut tasks = Vec::new();
    if let Some((addr, listener, config)) = secure {
        tracing::info!(%addr, "serving securely");
        tasks.push(tokio::spawn(tls::serve_tls(
            listener,
            config,
            app.clone(),
            authn,
            shutdown(),
        )));
    }
    if let Some((addr, listener)) = insecure {
        tracing::info!(%addr, "serving insecurely (no authentication) on the insecure port");
        tasks.push(tokio::spawn(tls::serve_plain(
            listener,
            app.clone(),
            shutdown(),
        )));
    }
    kube_common::signals::shutdown_signal().await;
    let _ = stop_tx.send(true);
    for t in tasks {
        t.await??;
    }
    Ok(())
}
