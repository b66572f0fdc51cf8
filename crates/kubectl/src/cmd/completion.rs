//! `kubectl completion SHELL`: the shell completion script. The bash and zsh
//! scripts call `kubectl __complete` on every TAB, as upstream's cobra
//! scripts do (see [`crate::cmd::complete`]), so names come from the server;
//! fish and powershell get `clap_complete`'s static script of our commands.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// SHELL: bash, zsh, fish or powershell
    pub shell: Vec<String>,
}

/// The script for `shell` (`bash`, `zsh`, `fish`, `powershell`).
pub fn script(shell: &str) -> Result<Vec<u8>> {
    let shell = match shell {
        "bash" => return Ok(include_bytes!("completion.bash").to_vec()),
        "zsh" => return Ok(include_bytes!("completion.zsh").to_vec()),
        "fish" => Shell::Fish,
        "powershell" => Shell::PowerShell,
        other => return Err(usage(&format!("Unsupported shell type {other:?}."))),
    };
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "kubectl", &mut out);
    Ok(out)
}

/// Upstream's `cmdutil.UsageErrorf` for this command.
fn usage(message: &str) -> Error {
    Error::usage(format!(
        "{message}\nSee 'kubectl completion -h' for help and examples"
    ))
}

pub fn run(args: CompletionArgs) -> Result<()> {
    use std::io::Write;
    let shell = match args.shell.as_slice() {
        [] => return Err(usage("Shell not specified.")),
        [shell] => shell,
        _ => return Err(usage("Too many arguments. Expected only the shell type.")),
    };
    let text = script(shell)?;
    std::io::stdout().write_all(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_for_known_shells_only() {
        let bash = String::from_utf8(script("bash").expect("bash")).expect("utf8");
        assert!(
            bash.contains("complete -o default -F __kubectl_complete kubectl"),
            "{bash}"
        );
        assert!(bash.contains("__completeNoDesc"), "{bash}");
        assert!(bash.contains("kubectl"));
        let zsh = String::from_utf8(script("zsh").expect("zsh")).expect("utf8");
        assert!(zsh.starts_with("#compdef kubectl"), "{zsh}");
        assert!(zsh.contains("__complete "), "{zsh}");
        assert_eq!(
            script("tcsh").err().map(|e| e.to_string()),
            Some(
                "error: Unsupported shell type \"tcsh\".\nSee 'kubectl completion -h' for help and examples"
                    .to_string()
            )
        );
    }
}
