//! `scripts/package.sh --bin-dir target/debug` builds a .deb and an .rpm per
//! component; these tests unpack and install them into throwaway roots and check
//! what a distribution user would rely on: the files, the conffiles, the units,
//! the dependencies, and that the binaries run.
//!
//! The binaries come from the target dir these tests were built in (`scripts/test.sh`
//! runs `cargo build --workspace --bins` first). rpm checks need `rpm`/`rpmbuild`
//! (installed by `scripts/install-deps.sh`); without them they are skipped with a
//! message.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RELEASE: &str = "1";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// target/<profile>: the test executable lives in target/<profile>/deps.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile> above deps/")
        .to_path_buf()
}

/// `[workspace.package] version` of the root Cargo.toml, read independently of the script.
fn workspace_version() -> String {
    let text = fs::read_to_string(repo_root().join("Cargo.toml")).expect("read Cargo.toml");
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section {
            if let Some(rest) = line.strip_prefix("version") {
                let value = rest.trim_start().trim_start_matches('=').trim();
                return value.trim_matches('"').to_string();
            }
        }
    }
    panic!("no [workspace.package] version in Cargo.toml");
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, killing it after `timeout`; returns stdout + stderr, or None on timeout.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Option<(bool, String)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = child.wait_with_output().expect("wait_with_output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

/// What one package must hold, written down here independently of the script.
#[derive(Debug)]
struct Expected {
    name: &'static str,
    bin: Option<&'static str>,
    unit: Option<&'static str>,
    /// (source under manifests/, installed path)
    configs: Vec<(&'static str, &'static str)>,
    dirs: Vec<&'static str>,
    depends: Vec<&'static str>,
    recommends: Vec<&'static str>,
    arch_indep: bool,
    /// Arguments that make the binary print its version (which must be the workspace's).
    version_args: &'static [&'static str],
}

impl Expected {
    fn new(name: &'static str) -> Self {
        Expected {
            name,
            bin: None,
            unit: None,
            configs: Vec::new(),
            dirs: Vec::new(),
            depends: Vec::new(),
            recommends: Vec::new(),
            arch_indep: false,
            version_args: &["--version"],
        }
    }

    fn component(name: &'static str, config: &'static str, installed: &'static str) -> Self {
        let unit: &'static str = match name {
            "kube-apiserver" => "kube-apiserver.service",
            "kube-controller-manager" => "kube-controller-manager.service",
            "kube-scheduler" => "kube-scheduler.service",
            "kubelet" => "kubelet.service",
            "kube-proxy" => "kube-proxy.service",
            "flanneld" => "flanneld.service",
            other => panic!("no unit known for {other}"),
        };
        Expected {
            bin: Some(name),
            unit: Some(unit),
            configs: vec![(config, installed)],
            depends: if name == "flanneld" {
                Vec::new()
            } else {
                vec!["kubernetes-common"]
            },
            ..Expected::new(name)
        }
    }

    /// Every non-directory path the package installs.
    fn files(&self) -> BTreeSet<String> {
        let mut files = BTreeSet::new();
        if let Some(bin) = self.bin {
            files.insert(format!("/usr/bin/{bin}"));
        }
        if let Some(unit) = self.unit {
            files.insert(format!("/usr/lib/systemd/system/{unit}"));
        }
        files.extend(self.configs.iter().map(|(_, dest)| dest.to_string()));
        files
    }

    fn conffiles(&self) -> BTreeSet<String> {
        self.configs.iter().map(|(_, d)| d.to_string()).collect()
    }
}

fn expected_packages(bins: &Path) -> Vec<Expected> {
    let root = repo_root();
    let mut all = vec![
        Expected {
            configs: vec![("etc/kubernetes/config", "/etc/kubernetes/config")],
            arch_indep: true,
            ..Expected::new("kubernetes-common")
        },
        Expected {
            recommends: vec!["etcd-server"],
            ..Expected::component(
                "kube-apiserver",
                "etc/kubernetes/apiserver",
                "/etc/kubernetes/apiserver",
            )
        },
        Expected::component(
            "kube-controller-manager",
            "etc/kubernetes/controller-manager",
            "/etc/kubernetes/controller-manager",
        ),
        Expected::component(
            "kube-scheduler",
            "etc/kubernetes/scheduler",
            "/etc/kubernetes/scheduler",
        ),
        Expected {
            dirs: vec!["/var/lib/kubelet"],
            ..Expected::component(
                "kubelet",
                "etc/kubernetes/kubelet",
                "/etc/kubernetes/kubelet",
            )
        },
        Expected::component(
            "kube-proxy",
            "etc/kubernetes/proxy",
            "/etc/kubernetes/proxy",
        ),
        Expected::component(
            "flanneld",
            "etc/sysconfig/flanneld",
            "/etc/sysconfig/flanneld",
        ),
        Expected {
            depends: vec![
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
            ],
            recommends: vec!["etcd-server"],
            arch_indep: true,
            ..Expected::new("kubernetes-master")
        },
        Expected {
            depends: vec![
                "kubelet",
                "kube-proxy",
                "flanneld",
                "containerd",
                "runc",
                "containernetworking-plugins",
            ],
            arch_indep: true,
            ..Expected::new("kubernetes-node")
        },
    ];
    // Written by other work in progress: packaged once their binaries exist.
    if bins.join("kubectl").is_file() {
        all.push(Expected {
            bin: Some("kubectl"),
            // As upstream, kubectl has no --version flag; the build is in gitCommit.
            version_args: &["version", "--client", "-o", "json"],
            ..Expected::new("kubectl")
        });
    }
    if bins.join("kube-dns").is_file() {
        let mut dns = Expected {
            bin: Some("kube-dns"),
            depends: vec!["kubernetes-common"],
            ..Expected::new("kube-dns")
        };
        if root.join("systemd/kube-dns.service").is_file() {
            dns.unit = Some("kube-dns.service");
        }
        if root.join("manifests/etc/kubernetes/dns").is_file() {
            dns.configs = vec![("etc/kubernetes/dns", "/etc/kubernetes/dns")];
        }
        all.push(dns);
    }
    all
}

/// Runs scripts/package.sh on the test's own binaries into a fresh directory
/// under target/ (same filesystem as the binaries, cleaned up on drop).
fn build_packages(format: &str) -> (tempfile::TempDir, PathBuf) {
    let bins = bin_dir();
    for bin in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "flanneld",
    ] {
        assert!(
            bins.join(bin).is_file(),
            "{} missing: build the binaries first (cargo build --workspace --bins; scripts/test.sh does)",
            bins.join(bin).display()
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("packaging-test")
        .tempdir_in(bins.parent().unwrap_or(&bins))
        .expect("tempdir");
    let out = tmp.path().join("packages");
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("scripts/package.sh"))
            .arg("--bin-dir")
            .arg(&bins)
            .arg("--out")
            .arg(&out)
            .args(["--format", format, "--fast"])
            .env("TMPDIR", tmp.path()),
    );
    (tmp, out)
}

fn find_package(dir: &Path, expected: &Expected, ext: &str) -> Option<PathBuf> {
    let version = workspace_version();
    let name = match ext {
        "deb" => {
            let arch = if expected.arch_indep {
                "all".to_string()
            } else {
                run_ok(Command::new("dpkg").arg("--print-architecture"))
                    .trim()
                    .to_string()
            };
            format!("{}_{version}-{RELEASE}_{arch}.deb", expected.name)
        }
        _ => {
            let arch = if expected.arch_indep {
                "noarch".to_string()
            } else {
                run_ok(Command::new("uname").arg("-m")).trim().to_string()
            };
            format!("{}-{version}-{RELEASE}.{arch}.rpm", expected.name)
        }
    };
    let path = dir.join(name);
    path.is_file().then_some(path)
}

/// Every path below `root` as "/a/b", with whether it is a directory.
fn walk(root: &Path) -> BTreeMap<String, bool> {
    fn go(root: &Path, dir: &Path, acc: &mut BTreeMap<String, bool>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            let rel = format!(
                "/{}",
                path.strip_prefix(root).expect("under root").display()
            );
            let is_dir = entry.file_type().expect("file type").is_dir();
            acc.insert(rel, is_dir);
            if is_dir {
                go(root, &path, acc);
            }
        }
    }
    let mut acc = BTreeMap::new();
    go(root, root, &mut acc);
    acc
}

/// Package names out of a Depends/Recommends field ("a (= 1), b | c" → a, b, c).
fn deb_relation_names(field: &str) -> BTreeSet<String> {
    field
        .split([',', '|'])
        .filter_map(|item| item.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn sha256(path: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(path));
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `systemd-analyze verify` of an installed unit, its ExecStart pointed at the
/// unpacked binary (verify checks the executable exists) as scripts/test.sh does.
fn verify_unit(unit_path: &Path, root: &Path, scratch: &Path) -> Result<(), String> {
    let text =
        fs::read_to_string(unit_path).map_err(|e| format!("{}: {e}", unit_path.display()))?;
    let usr_bin = root.join("usr/bin");
    let rewritten = text.replace("/usr/bin/", &format!("{}/", usr_bin.display()));
    fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let copy = scratch.join(unit_path.file_name().ok_or("unit has no file name")?);
    fs::write(&copy, rewritten).map_err(|e| e.to_string())?;
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("systemd-analyze verify {}: {text}", copy.display()))
    }
}

/// Checks one .deb; returns its non-directory files with their sha256 for the rpm comparison.
fn check_deb(
    deb: &Path,
    expected: &Expected,
    scratch: &Path,
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let repo = repo_root();
    let version = workspace_version();
    let name = expected.name;
    let mut fail = |msg: String| problems.push(format!("{name} (deb): {msg}"));

    let fields = run_ok(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(deb)
            .args(["Package", "Version"]),
    );
    if !fields.contains(&format!("Package: {name}\n"))
        || !fields.contains(&format!("Version: {version}-{RELEASE}\n"))
    {
        fail(format!("control fields {fields:?}"));
    }
    let depends = deb_relation_names(&run_ok(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(deb)
            .arg("Depends"),
    ));
    for dep in &expected.depends {
        if !depends.contains(*dep) {
            fail(format!("Depends lacks {dep}: {depends:?}"));
        }
    }
    let recommends = deb_relation_names(&run_ok(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(deb)
            .arg("Recommends"),
    ));
    for rec in &expected.recommends {
        if !recommends.contains(*rec) {
            fail(format!("Recommends lacks {rec}: {recommends:?}"));
        }
    }

    let root = scratch.join(format!("{name}-deb-root"));
    let control = scratch.join(format!("{name}-deb-control"));
    run_ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root));
    run_ok(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control));

    // Exactly the expected files (directories aside), with the repository's contents.
    let tree = walk(&root);
    let files: BTreeSet<String> = tree
        .iter()
        .filter(|(_, d)| !**d)
        .map(|(p, _)| p.clone())
        .collect();
    if files != expected.files() {
        fail(format!("files {files:?}, expected {:?}", expected.files()));
    }
    for dir in &expected.dirs {
        if tree.get(*dir) != Some(&true) {
            fail(format!("directory {dir} missing"));
        }
    }
    for (src, dest) in &expected.configs {
        let want = fs::read(repo.join("manifests").join(src)).expect("read manifest");
        if fs::read(root.join(dest.trim_start_matches('/'))).ok() != Some(want) {
            fail(format!("{dest} differs from manifests/{src}"));
        }
    }
    if let Some(unit) = expected.unit {
        let installed = root.join("usr/lib/systemd/system").join(unit);
        let want = fs::read(repo.join("systemd").join(unit)).expect("read unit");
        if fs::read(&installed).ok() != Some(want) {
            fail(format!("{unit} differs from systemd/{unit}"));
        }
        if let Err(e) = verify_unit(&installed, &root, &scratch.join(format!("{name}-units"))) {
            fail(e);
        }
    }

    // Conffiles: exactly the files under /etc.
    let conffiles: BTreeSet<String> = fs::read_to_string(control.join("conffiles"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    if conffiles != expected.conffiles() {
        fail(format!(
            "conffiles {conffiles:?}, expected {:?}",
            expected.conffiles()
        ));
    }

    if let Some(bin) = expected.bin {
        let path = root.join("usr/bin").join(bin);
        let args = expected.version_args.join(" ");
        match run_with_timeout(
            Command::new(&path).args(expected.version_args),
            Duration::from_secs(30),
        ) {
            None => fail(format!("{} {args} did not exit within 30s", path.display())),
            Some((ok, text)) if !ok || !text.contains(&version) => fail(format!(
                "`{bin} {args}` (exit ok: {ok}) says {text:?}, expected it to contain {version}"
            )),
            Some(_) => {}
        }
    }

    files
        .iter()
        .map(|f| (f.clone(), sha256(&root.join(f.trim_start_matches('/')))))
        .collect()
}

/// Checks the .rpm against the .deb's files (same paths, same bytes) and the expectations.
fn check_rpm(
    rpm: &Path,
    expected: &Expected,
    deb_files: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) {
    let version = workspace_version();
    let name = expected.name;
    let mut fail = |msg: String| problems.push(format!("{name} (rpm): {msg}"));

    let nvr = run_ok(
        Command::new("rpm")
            .arg("-qp")
            .args(["--qf", "%{NAME} %{VERSION} %{RELEASE}"])
            .arg(rpm),
    );
    if nvr != format!("{name} {version} {RELEASE}") {
        fail(format!("name/version/release {nvr:?}"));
    }
    // `rpm -qlp` with modes and digests: directories apart, the same files as the deb.
    let listing = run_ok(
        Command::new("rpm")
            .arg("-qp")
            .args(["--qf", "[%{FILEMODES:perms} %{FILEDIGESTS} %{FILENAMES}\n]"])
            .arg(rpm),
    );
    let mut files = BTreeMap::new();
    let mut dirs = BTreeSet::new();
    for line in listing.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(perms), Some(digest), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            fail(format!("unexpected rpm listing line {line:?}"));
            continue;
        };
        if perms.starts_with('d') {
            dirs.insert(path.to_string());
        } else {
            files.insert(path.to_string(), digest.to_string());
        }
    }
    let file_names: BTreeSet<&String> = files.keys().collect();
    let deb_names: BTreeSet<&String> = deb_files.keys().collect();
    if file_names != deb_names {
        fail(format!(
            "rpm -qlp lists {file_names:?}, the deb holds {deb_names:?}"
        ));
    } else if &files != deb_files {
        fail("file contents (sha256) differ from the deb's".to_string());
    }
    for dir in &expected.dirs {
        if !dirs.contains(*dir) {
            fail(format!("does not own directory {dir}"));
        }
    }
    let config: BTreeSet<String> = run_ok(Command::new("rpm").arg("-qcp").arg(rpm))
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(str::to_string)
        .collect();
    if config != expected.conffiles() {
        fail(format!(
            "%config files {config:?}, expected {:?}",
            expected.conffiles()
        ));
    }
    let requires: BTreeSet<String> =
        run_ok(Command::new("rpm").arg("-qp").arg("--requires").arg(rpm))
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
    for dep in &expected.depends {
        if !requires.contains(*dep) {
            fail(format!("Requires lacks {dep}: {requires:?}"));
        }
    }
}

#[test]
fn every_component_has_a_deb_and_an_rpm_with_the_same_working_files() {
    let with_rpm = have("rpmbuild") && have("rpm");
    if !with_rpm {
        eprintln!("rpm/rpmbuild not installed (scripts/install-deps.sh installs them): checking the .debs only");
    }
    let (tmp, out) = build_packages(if with_rpm { "all" } else { "deb" });
    let expected = expected_packages(&bin_dir());

    // Exactly the expected packages, nothing else.
    let built: BTreeSet<String> = fs::read_dir(&out)
        .expect("read out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut wanted = BTreeSet::new();
    let mut problems = Vec::new();
    let scratch = tmp.path().join("scratch");
    fs::create_dir_all(&scratch).expect("mkdir scratch");
    for exp in &expected {
        let Some(deb) = find_package(&out, exp, "deb") else {
            problems.push(format!("{}: no .deb in {built:?}", exp.name));
            continue;
        };
        wanted.insert(
            deb.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let deb_files = check_deb(&deb, exp, &scratch, &mut problems);
        if with_rpm {
            let Some(rpm) = find_package(&out, exp, "rpm") else {
                problems.push(format!("{}: no .rpm in {built:?}", exp.name));
                continue;
            };
            wanted.insert(
                rpm.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            check_rpm(&rpm, exp, &deb_files, &mut problems);
        }
    }
    if built != wanted {
        problems.push(format!("built {built:?}, expected exactly {wanted:?}"));
    }
    assert!(
        problems.is_empty(),
        "package problems:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn dpkg_install_needs_common_and_keeps_edited_conffiles() {
    let (tmp, out) = build_packages("deb");
    let expected = expected_packages(&bin_dir());
    let by_name = |name: &str| {
        let exp = expected
            .iter()
            .find(|e| e.name == name)
            .expect("expected package");
        find_package(&out, exp, "deb").unwrap_or_else(|| panic!("no .deb for {name}"))
    };
    let (common, apiserver) = (by_name("kubernetes-common"), by_name("kube-apiserver"));

    let root = tmp.path().join("root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::write(root.join("var/lib/dpkg/status"), "").expect("status");
    // Maintainer scripts run outside the root (no shell in it) with DPKG_ROOT set.
    let dpkg = || {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", root.display()))
            .arg("--force-script-chrootless");
        cmd
    };

    let alone = run(dpkg().arg("-i").arg(&apiserver));
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert!(
        !alone.status.success() && stderr.contains("kubernetes-common"),
        "kube-apiserver must not configure without kubernetes-common: {stderr}"
    );
    run_ok(dpkg().arg("-i").arg(&common).arg(&apiserver));
    let status = run_ok(dpkg().args(["-s", "kube-apiserver"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(
        status.contains("\n /etc/kubernetes/apiserver "),
        "conffile not registered: {status}"
    );

    // An operator's edit survives reinstalling and removing (not purging) the package.
    let config = root.join("etc/kubernetes/apiserver");
    let edited = format!(
        "{}KUBE_API_ARGS=\"--v=4\"\n",
        fs::read_to_string(&config).expect("installed config")
    );
    fs::write(&config, &edited).expect("edit config");
    run_ok(dpkg().args(["--force-confold", "-i"]).arg(&apiserver));
    assert_eq!(
        fs::read_to_string(&config).expect("config after reinstall"),
        edited
    );
    run_ok(dpkg().args(["-r", "kube-apiserver"]));
    assert!(
        !root.join("usr/bin/kube-apiserver").exists(),
        "binary left after remove"
    );
    assert_eq!(
        fs::read_to_string(&config).expect("config after remove"),
        edited
    );
    run_ok(dpkg().args(["-P", "kube-apiserver"]));
    assert!(!config.exists(), "conffile left after purge");
    assert!(
        root.join("etc/kubernetes/config").is_file(),
        "kubernetes-common's config went with kube-apiserver"
    );
}

#[test]
fn rpm_install_needs_common_and_saves_edited_config() {
    if !(have("rpmbuild") && have("rpm")) {
        eprintln!("rpm/rpmbuild not installed (scripts/install-deps.sh installs them): skipped");
        return;
    }
    let (tmp, out) = build_packages("rpm");
    let expected = expected_packages(&bin_dir());
    let by_name = |name: &str| {
        let exp = expected
            .iter()
            .find(|e| e.name == name)
            .expect("expected package");
        find_package(&out, exp, "rpm").unwrap_or_else(|| panic!("no .rpm for {name}"))
    };
    let (common, apiserver) = (by_name("kubernetes-common"), by_name("kube-apiserver"));
    let root = tmp.path().join("root");
    fs::create_dir_all(&root).expect("mkdir root");
    let rpm = || {
        let mut cmd = Command::new("rpm");
        cmd.arg("--root").arg(&root);
        cmd
    };
    run_ok(rpm().arg("--initdb"));

    // The root has no libc package either: only the kubernetes-common requirement matters here.
    let alone = run(rpm().args(["-i", "--noscripts"]).arg(&apiserver));
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert!(
        !alone.status.success() && stderr.contains("kubernetes-common = "),
        "kube-apiserver must require kubernetes-common: {stderr}"
    );
    // Scriptlets would run chrooted into a root without a shell.
    run_ok(
        rpm()
            .args(["-i", "--noscripts", "--nodeps"])
            .arg(&common)
            .arg(&apiserver),
    );
    let version = workspace_version();
    let installed = run_ok(rpm().args(["-q", "--qf", "%{VERSION}-%{RELEASE}", "kube-apiserver"]));
    assert_eq!(installed, format!("{version}-{RELEASE}"));
    let bin = root.join("usr/bin/kube-apiserver");
    let (ok, text) = run_with_timeout(Command::new(&bin).arg("--version"), Duration::from_secs(30))
        .expect("--version timed out");
    assert!(ok && text.contains(&version), "{text}");

    let config = root.join("etc/kubernetes/apiserver");
    let edited = format!(
        "{}KUBE_API_ARGS=\"--v=4\"\n",
        fs::read_to_string(&config).expect("installed config")
    );
    fs::write(&config, &edited).expect("edit config");
    run_ok(rpm().args(["-e", "--noscripts", "--nodeps", "kube-apiserver"]));
    assert!(!bin.exists(), "binary left after erase");
    // %config(noreplace): the operator's edit is kept as .rpmsave.
    assert_eq!(
        fs::read_to_string(root.join("etc/kubernetes/apiserver.rpmsave"))
            .expect("apiserver.rpmsave"),
        edited
    );
    assert!(root.join("etc/kubernetes/config").is_file());
}
