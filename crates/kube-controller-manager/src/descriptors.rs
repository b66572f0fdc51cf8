//! The controller table that drives `--controllers`, as upstream's
//! `controller_descriptor.go`: canonical names (`replicaset-controller`), the old
//! short aliases (`replicaset`), and whether a controller runs under `*`.

use futures::future::BoxFuture;
use thiserror::Error;

use crate::context::ControllerContext;
use crate::controllers;

/// Starts a controller; the future runs until the controller stops.
pub type StartFn = fn(ControllerContext) -> BoxFuture<'static, anyhow::Result<()>>;

pub struct ControllerDescriptor {
    /// Canonical name (`names.ReplicaSetController` upstream).
    pub name: &'static str,
    /// Names `--controllers` also accepts.
    pub aliases: &'static [&'static str],
    /// Whether `*` includes it.
    pub enabled_by_default: bool,
    pub start: StartFn,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    #[error("{0:?} is not in the list of known controllers")]
    Unknown(String),
}

/// Every controller this binary knows.
pub fn descriptors() -> &'static [ControllerDescriptor] {
    controllers::DESCRIPTORS
}

/// Resolves an alias or canonical name to its descriptor.
pub fn lookup<'a>(
    table: &'a [ControllerDescriptor],
    name: &str,
) -> Option<&'a ControllerDescriptor> {
    table
        .iter()
        .find(|d| d.name == name || d.aliases.contains(&name))
}

/// Checks every `--controllers` entry names a known controller.
pub fn validate(table: &[ControllerDescriptor], flags: &[String]) -> Result<(), Error> {
    for entry in flags {
        let name = entry.strip_prefix('-').unwrap_or(entry);
        if name != "*" && lookup(table, name).is_none() {
            return Err(Error::Unknown(name.to_string()));
        }
    }
    Ok(())
}

/// Upstream's `IsControllerEnabled`: the first explicit `name`/`-name` wins, else
/// `*` enables the default-on controllers.
pub fn is_enabled(descriptor: &ControllerDescriptor, flags: &[String]) -> bool {
    let names_it = |n: &str| n == descriptor.name || descriptor.aliases.contains(&n);
    let mut has_star = false;
    for entry in flags {
        if let Some(disabled) = entry.strip_prefix('-') {
            if names_it(disabled) {
                return false;
            }
        } else if entry == "*" {
            has_star = true;
        } else if names_it(entry) {
            return true;
        }
    }
    has_star && descriptor.enabled_by_default
}

/// The descriptors `flags` enables, in table order.
pub fn enabled<'a>(
    table: &'a [ControllerDescriptor],
    flags: &[String],
) -> Result<Vec<&'a ControllerDescriptor>, Error> {
    validate(table, flags)?;
    Ok(table.iter().filter(|d| is_enabled(d, flags)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    const TABLE: &[ControllerDescriptor] = &[
        ControllerDescriptor {
            name: "replicaset-controller",
            aliases: &["replicaset"],
            enabled_by_default: true,
            start: never,
        },
        ControllerDescriptor {
            name: "garbage-collector-controller",
            aliases: &["garbagecollector"],
            enabled_by_default: true,
            start: never,
        },
        ControllerDescriptor {
            name: "off-controller",
            aliases: &["off"],
            enabled_by_default: false,
            start: never,
        },
    ];

    fn names(flags: &[&str]) -> Vec<&'static str> {
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        enabled(TABLE, &flags)
            .expect("valid")
            .iter()
            .map(|d| d.name)
            .collect()
    }

    #[test]
    fn star_enables_default_on_controllers() {
        assert_eq!(
            names(&["*"]),
            ["replicaset-controller", "garbage-collector-controller"]
        );
    }

    #[test]
    fn minus_disables_and_name_enables() {
        assert_eq!(
            names(&["*", "-garbagecollector"]),
            ["replicaset-controller"]
        );
        assert_eq!(
            names(&["*", "off"]),
            [
                "replicaset-controller",
                "garbage-collector-controller",
                "off-controller"
            ]
        );
        assert_eq!(names(&["replicaset"]), ["replicaset-controller"]);
        assert_eq!(
            names(&["-replicaset-controller", "*"]),
            ["garbage-collector-controller"]
        );
        assert!(names(&[]).is_empty());
    }

    #[test]
    fn unknown_names_are_rejected() {
        let flags = vec!["*".to_string(), "-nope".to_string()];
        assert_eq!(
            enabled(TABLE, &flags).err(),
            Some(Error::Unknown("nope".into()))
        );
    }

    #[test]
    fn the_real_table_has_unique_names() {
        let mut seen = std::collections::HashSet::new();
        for d in descriptors() {
            assert!(seen.insert(d.name), "{}", d.name);
            for a in d.aliases {
                assert!(seen.insert(a), "{a}");
            }
        }
    }
}
