//! What every verb gets: the parsed global flags, the kubeconfig, and (lazily, once
//! per run) the API client and discovery.

use tokio::sync::OnceCell;

use crate::client::Client;
use crate::config::{ConfigFlags, Kubeconfig};
use crate::errors::Result;
use crate::resource::Discovery;

pub struct Context {
    pub flags: ConfigFlags,
    pub kubeconfig: Kubeconfig,
    client: OnceCell<Client>,
    discovery: OnceCell<Discovery>,
}

impl Context {
    pub fn new(flags: ConfigFlags) -> Result<Context> {
        let kubeconfig = Kubeconfig::load(&flags)?;
        Ok(Context {
            flags,
            kubeconfig,
            client: OnceCell::new(),
            discovery: OnceCell::new(),
        })
    }

    pub async fn client(&self) -> Result<&Client> {
        self.client
            .get_or_try_init(|| Client::new(&self.kubeconfig, &self.flags))
            .await
    }

    /// Discovery, fetched on first use and kept for the rest of the run.
    pub async fn discovery(&self) -> Result<&Discovery> {
        let client = self.client().await?;
        self.discovery
            .get_or_try_init(|| Discovery::load(client))
            .await
    }

    /// The namespace of this run (`-n`, the context's, `default`).
    pub fn namespace(&self) -> String {
        self.kubeconfig.namespace(&self.flags)
    }

    /// Whether `-n` was given (upstream refuses a manifest in another namespace then).
    pub fn namespace_explicit(&self) -> bool {
        self.flags.namespace.is_some()
    }
}
