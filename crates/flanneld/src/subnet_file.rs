//! `/run/flannel/subnet.env`, as upstream's `WriteSubnetFile`, and reading the
//! previous subnet back after a restart.

use std::io::Write;
use std::path::Path;

use ipnet::Ipv4Net;

use crate::lease::first_host;

/// The file's text: FLANNEL_NETWORK, FLANNEL_SUBNET (lease IP + 1 with the lease
/// prefix), FLANNEL_MTU, FLANNEL_IPMASQ.
pub fn render(network: &Ipv4Net, subnet: &Ipv4Net, mtu: u32, ip_masq: bool) -> String {
    format!(
        "FLANNEL_NETWORK={network}\nFLANNEL_SUBNET={}/{}\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ={ip_masq}\n",
        first_host(subnet),
        subnet.prefix_len()
    )
}

/// Writes atomically (temp file + rename), creating the directory.
pub fn write(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The subnet in a previous file's `FLANNEL_SUBNET` (as a network), if any.
pub fn read_previous_subnet(path: &Path) -> Option<Ipv4Net> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_key(&text, "FLANNEL_SUBNET").map(|n| n.trunc())
}

fn parse_key(text: &str, key: &str) -> Option<Ipv4Net> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key)
            .then(|| v.trim().trim_matches('"').parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_upstream() {
        let text = render(
            &"10.1.0.0/16".parse().expect("net"),
            &"10.1.94.0/24".parse().expect("net"),
            1450,
            true,
        );
        assert_eq!(
            text,
            "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.94.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
    }

    #[test]
    fn write_then_read_previous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/flannel/subnet.env");
        assert_eq!(read_previous_subnet(&path), None);
        let text = render(
            &"10.1.0.0/16".parse().expect("net"),
            &"10.1.7.0/24".parse().expect("net"),
            1500,
            false,
        );
        write(&path, &text).expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        assert_eq!(
            read_previous_subnet(&path),
            Some("10.1.7.0/24".parse().expect("net"))
        );
        // Only the file itself is left in the directory.
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("ls")
            .collect();
        assert_eq!(names.len(), 1);
        std::fs::write(&path, "FLANNEL_SUBNET=junk\n").expect("write");
        assert_eq!(read_previous_subnet(&path), None);
    }
}
