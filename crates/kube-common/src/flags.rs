//! Flag spelling as upstream accepts it.
//!
//! Upstream's pflag normalizer treats `_` and `-` in flag names alike
//! (`--etcd_servers` == `--etcd-servers`), and Go's flag package (flanneld) accepts a
//! single leading dash for long flags (`-etcd-endpoints`). We rewrite argv to the
//! canonical `--dash-form` before clap sees it.

/// Rewrites `--foo_bar[=v]` to `--foo-bar[=v]`; when `single_dash_long` is set, also
/// `-foo-bar[=v]` (more than one letter) to `--foo-bar[=v]`. Values are left alone and
/// everything after a bare `--` is passed through unchanged.
pub fn normalize_args<I, S>(args: I, single_dash_long: bool) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, arg) in args.into_iter().map(Into::into).enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let body = if let Some(rest) = arg.strip_prefix("--") {
            rest
        } else if single_dash_long
            && arg.len() > 2
            && arg.starts_with('-')
            && !arg[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            let rest = &arg[1..];
            // `-v=2` style single-letter flags stay short.
            if rest.split('=').next().is_some_and(|n| n.len() > 1) {
                rest
            } else {
                out.push(arg);
                continue;
            }
        } else {
            out.push(arg);
            continue;
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let name = name.replace('_', "-");
        out.push(match value {
            Some(v) => format!("--{name}={v}"),
            None => format!("--{name}"),
        });
    }
    out
}

/// `normalize_args(std::env::args(), false)`.
pub fn args() -> Vec<String> {
    normalize_args(std::env::args(), false)
}

/// Parses a Go-style boolean flag value (`true`, `1`, `t`, `false`, `0`, `f`).
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        other => Err(format!("invalid boolean value {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscores_become_dashes_in_names_only() {
        let got = normalize_args(
            [
                "bin",
                "--etcd_servers=http://a_b:1",
                "--v",
                "2",
                "--",
                "--x_y",
            ],
            false,
        );
        assert_eq!(
            got,
            [
                "bin",
                "--etcd-servers=http://a_b:1",
                "--v",
                "2",
                "--",
                "--x_y"
            ]
        );
    }

    #[test]
    fn single_dash_long_flags_when_allowed() {
        let got = normalize_args(["bin", "-etcd-endpoints=http://x", "-v=2", "-x"], true);
        assert_eq!(got, ["bin", "--etcd-endpoints=http://x", "-v=2", "-x"]);
        let kept = normalize_args(["bin", "-etcd-endpoints=http://x"], false);
        assert_eq!(kept, ["bin", "-etcd-endpoints=http://x"]);
    }
}
