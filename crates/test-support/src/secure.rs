//! The apiserver as a secured cluster runs it: the PKI and kubeconfigs of our own
//! `kube-apiserver gen-certs`, TLS from the cluster CA, client certificates,
//! `Node,RBAC` and ServiceAccount tokens.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::apiserver::ApiServer;
use crate::etcd::Etcd;
use crate::kubectl::{kubectl_kubeconfig, KubectlOutput};
use crate::pki::{b64, Ca};

/// `--service-account-issuer` of [`SecureApiServer`].
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// What gen-certs writes as the server URL; replaced by the real one once the
/// apiserver has its free port.
const SERVER_PLACEHOLDER: &str = "https://127.0.0.1:SECURE_PORT";

/// Who gets a client certificate and kubeconfig besides the built-in identities
/// (`admin` in system:masters, `controller-manager`, `scheduler`, `kube-proxy`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Identities<'a> {
    /// Node names: `kubelet-<node>.conf` as `system:node:<node>` in `system:nodes`.
    pub nodes: &'a [&'a str],
    /// `name` or `name:group`: `user-<name>.conf`.
    pub users: &'a [&'a str],
}

/// A running secured apiserver with its PKI directory; killed on drop.
pub struct SecureApiServer {
    // Field order: the process dies before the PKI directory is removed and
    // before its own etcd (if it has one) stops.
    api: ApiServer,
    dir: TempDir,
    etcd: Option<Etcd>,
}

impl SecureApiServer {
    /// Runs `<binary> gen-certs` into a temp dir, starts `binary` on it with
    /// [`secure_args`] plus `extra_args`, and points every generated kubeconfig at
    /// the secure port.
    pub fn start(
        binary: &Path,
        etcd: &Etcd,
        identities: Identities<'_>,
        extra_args: &[&str],
    ) -> anyhow::Result<SecureApiServer> {
        let dir = tempfile::Builder::new().prefix("pki-").tempdir()?;
        gen_certs(binary, dir.path(), identities)?;
        let mut args = secure_args(dir.path());
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let api = ApiServer::start(binary, etcd, &args)?;
        let server = format!("https://127.0.0.1:{}", api.secure_port());
        for entry in std::fs::read_dir(dir.path())?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "conf") {
                let text = std::fs::read_to_string(&path)?;
                std::fs::write(&path, text.replace(SERVER_PLACEHOLDER, &server))
                    .with_context(|| format!("rewriting {}", path.display()))?;
            }
        }
        Ok(SecureApiServer {
            api,
            dir,
            etcd: None,
        })
    }

    /// [`SecureApiServer::start`] on an etcd of its own, stopped on drop.
    pub fn start_with_etcd(
        binary: &Path,
        identities: Identities<'_>,
        extra_args: &[&str],
    ) -> anyhow::Result<SecureApiServer> {
        let etcd = Etcd::start()?;
        let mut server = Self::start(binary, &etcd, identities, extra_args)?;
        server.etcd = Some(etcd);
        Ok(server)
    }

    /// The gen-certs directory: `<name>.conf` kubeconfigs and `pki/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file under `pki/` (`ca.crt`, `ca.key`, `admin.crt`, `user-jane.key`, ...).
    pub fn pki_file(&self, name: &str) -> PathBuf {
        self.dir.path().join("pki").join(name)
    }

    /// The generated kubeconfig `<name>.conf` (`admin`, `user-jane`, `kubelet-n1`, ...).
    pub fn kubeconfig_for(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.conf"))
    }

    /// The cluster CA, to sign further client certificates.
    pub fn ca(&self) -> anyhow::Result<Ca> {
        let cert = std::fs::read_to_string(self.pki_file("ca.crt"))?;
        let key = std::fs::read_to_string(self.pki_file("ca.key"))?;
        Ca::from_pem(&cert, &key)
    }

    /// Writes `<name>.conf`: the secure port, the cluster CA, and `user` as a YAML
    /// flow mapping (`{token: abc}`; `{}` is anonymous).
    pub fn kubeconfig_with_user(&self, name: &str, user: &str) -> anyhow::Result<PathBuf> {
        let ca = std::fs::read(self.pki_file("ca.crt"))?;
        let conf = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user: {user}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u, namespace: default}}\ncurrent-context: c\n",
            self.api.secure_port(),
            b64(&ca),
        );
        let path = self.kubeconfig_for(name);
        std::fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The upstream kubectl with the kubeconfig `<name>.conf`.
    pub fn kubectl_as(&self, name: &str, args: &[&str], stdin: Option<&str>) -> KubectlOutput {
        self.kubectl_with_kubeconfig(&self.kubeconfig_for(name), args, stdin)
    }

    /// [`SecureApiServer::kubectl_as`] without stdin that must succeed: its stdout.
    /// Panics with kubectl's output and the apiserver log otherwise.
    #[track_caller]
    pub fn kubectl_ok(&self, name: &str, args: &[&str]) -> String {
        let out = self.kubectl_as(name, args, None);
        assert!(
            out.success(),
            "kubectl {args:?} as {name} failed:\n{out}\n--- apiserver log ---\n{}",
            self.api.log()
        );
        out.stdout
    }

    /// The upstream kubectl with any kubeconfig (one discovery cache per file).
    pub fn kubectl_with_kubeconfig(
        &self,
        kubeconfig: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> KubectlOutput {
        let stem = kubeconfig
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cache = self.api.dir().join(format!("cache-{stem}"));
        kubectl_kubeconfig(kubeconfig, &cache, args, stdin)
    }
}

impl Deref for SecureApiServer {
    type Target = ApiServer;

    fn deref(&self) -> &ApiServer {
        &self.api
    }
}

/// The flags that secure an apiserver on a gen-certs directory: serving
/// certificate, client CA, its client certificate for kubelets, `Node,RBAC`,
/// ServiceAccount token keys and issuer.
pub fn secure_args(gen_certs_dir: &Path) -> Vec<String> {
    let p = |f: &str| gen_certs_dir.join("pki").join(f).display().to_string();
    vec![
        format!("--client-ca-file={}", p("ca.crt")),
        format!("--tls-cert-file={}", p("apiserver.crt")),
        format!("--tls-private-key-file={}", p("apiserver.key")),
        format!(
            "--kubelet-client-certificate={}",
            p("apiserver-kubelet-client.crt")
        ),
        format!("--kubelet-client-key={}", p("apiserver-kubelet-client.key")),
        "--authorization-mode=Node,RBAC".to_string(),
        format!("--service-account-signing-key-file={}", p("sa.key")),
        format!("--service-account-key-file={}", p("sa.pub")),
        format!("--service-account-issuer={SERVICE_ACCOUNT_ISSUER}"),
    ]
}

/// `<apiserver binary> gen-certs` into `dir`, kubeconfigs naming [`SERVER_PLACEHOLDER`].
fn gen_certs(binary: &Path, dir: &Path, identities: Identities<'_>) -> anyhow::Result<()> {
    let mut command = Command::new(binary);
    command
        .arg("gen-certs")
        .arg("--dir")
        .arg(dir)
        .args(["--server", SERVER_PLACEHOLDER]);
    for node in identities.nodes {
        command.args(["--node", node]);
    }
    for user in identities.users {
        command.args(["--user", user]);
    }
    let out = command
        .output()
        .with_context(|| format!("running {} gen-certs", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} gen-certs: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
