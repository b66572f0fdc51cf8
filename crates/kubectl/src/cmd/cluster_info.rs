//! `kubectl cluster-info`: the control plane URL and the cluster services of
//! `kube-system` labelled `kubernetes.io/cluster-service=true`.

use crate::context::Context;
use crate::errors::Result;

#[derive(Debug, clap::Args)]
pub struct ClusterInfoArgs {}

pub async fn run(ctx: &Context, _args: ClusterInfoArgs) -> Result<()> {
    let client = ctx.client().await?;
    // Upstream checks the server is there before printing anything.
    client.get("/api").await?;
    let server = client.server().trim_end_matches('/').to_string();
    println!("Kubernetes control plane is running at {server}");
    let services = client
        .get("/api/v1/namespaces/kube-system/services?labelSelector=kubernetes.io%2Fcluster-service%3Dtrue")
        .await?;
    for svc in services["items"].as_array().into_iter().flatten() {
        let name = svc["metadata"]["name"].as_str().unwrap_or_default();
        let display = svc["metadata"]["labels"]["kubernetes.io/name"]
            .as_str()
            .unwrap_or(name);
        let port = svc["spec"]["ports"][0]
            .get("name")
            .and_then(|n| n.as_str())
            .map(|n| format!(":{n}"))
            .unwrap_or_default();
        println!(
            "{display} is running at {server}/api/v1/namespaces/kube-system/services/{name}{port}/proxy"
        );
    }
    println!();
    println!("To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.");
    Ok(())
}
