//! Helpers for integration tests: free ports, a real etcd, our apiserver, and
//! the upstream kubectl, each process killed (and reaped) on drop.
//!
//! In an integration test of the kube-apiserver crate (where cargo defines
//! `CARGO_BIN_EXE_kube-apiserver`):
//!
//! ```ignore
//! use std::path::Path;
//! use test_support::{kubectl, ApiServer, Etcd};
//!
//! let etcd = Etcd::start()?;
//! let server = ApiServer::start(Path::new(env!("CARGO_BIN_EXE_kube-apiserver")), &etcd, &[])?;
//! kubectl(&server, &["get", "namespaces"]).assert_success();
//! # anyhow::Ok(())
//! ```
//!
//! A secured apiserver (gen-certs PKI, client certificates, RBAC) is
//! [`SecureApiServer`]; [`Ca`] signs more client certificates and [`csr_pem`] /
//! [`csr_manifest`] build CertificateSigningRequests.
//!
//! No async runtime: std threads and processes only.

mod apiserver;
mod etcd;
mod http;
mod kubectl;
mod pki;
mod ports;
mod process;
mod secure;

pub use apiserver::{kubeconfig_yaml, ApiServer, KUBECONFIG_CONTEXT};
pub use etcd::{Etcd, ETCDCTL_BIN, ETCD_BIN};
pub use http::{http_get, http_request, http_request_with, HttpResponse};
pub use kubectl::{
    kubectl, kubectl_binary_kubeconfig, kubectl_env, kubectl_kubeconfig, kubectl_stdin,
    kubectl_with, versioned_kubectls, KubectlOutput, KUBECTL, KUBECTL_TIMEOUT,
    VERSIONED_KUBECTL_DIR,
};
pub use pki::{b64, csr_manifest, csr_pem, Ca, Issued, Validity};
pub use ports::free_port;
pub use secure::{secure_args, Identities, SecureApiServer, SERVICE_ACCOUNT_ISSUER};
