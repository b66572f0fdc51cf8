//! The command line: global flags (kubeconfig selection and overrides, `-v`) and
//! one subcommand per verb. A verb's own flags live in its module (`cmd/<verb>.rs`).

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::config::ConfigFlags;

#[derive(Debug, Parser)]
#[command(
    name = "kubectl",
    about = "kubectl controls the Kubernetes cluster manager.",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigFlags,
    /// number for the log level verbosity
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    pub verbosity: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Display one or many resources
    Get(cmd::get::GetArgs),
    /// Create a resource from a file or from stdin
    Create(cmd::create::CreateArgs),
    /// Apply a configuration to a resource by file name or stdin
    Apply(cmd::apply::ApplyArgs),
    /// Replace a resource by file name or stdin
    Replace(cmd::replace::ReplaceArgs),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector
    Delete(cmd::delete::DeleteArgs),
    /// Update fields of a resource
    Patch(cmd::patch::PatchArgs),
    /// Update the labels on a resource
    Label(cmd::label::LabelArgs),
    /// Update the annotations on a resource
    Annotate(cmd::label::LabelArgs),
    /// Set a new size for a deployment, replica set, or replication controller
    Scale(cmd::scale::ScaleArgs),
    /// Print the client and server version information
    Version(cmd::version::VersionArgs),
    /// Display cluster information
    ClusterInfo(cmd::cluster_info::ClusterInfoArgs),
    /// Print the supported API resources on the server
    ApiResources(cmd::api_resources::ApiResourcesArgs),
    /// Print the supported API versions on the server, in the form of "group/version"
    ApiVersions,
    /// Execute a command in a container
    Exec(cmd::exec::ExecArgs),
    /// Attach to a running container
    Attach(cmd::attach::AttachArgs),
    /// Forward one or more local ports to a pod
    PortForward(cmd::port_forward::PortForwardArgs),
    /// Copy files and directories to and from containers
    Cp(cmd::cp::CpArgs),
    /// Perform a rolling update of the given ReplicationController (the legacy 1.x verb)
    RollingUpdate(cmd::rolling_update::RollingUpdateArgs),
    /// Take a replication controller, service, deployment or pod and expose it as a new Kubernetes service
    Expose(cmd::expose::ExposeArgs),
    /// Print the logs for a container in a pod
    Logs(cmd::logs::LogsArgs),
    /// Run a particular image on the cluster
    Run(cmd::run::RunArgs),
    /// Experimental: Wait for a specific condition on one or many resources
    Wait(cmd::wait::WaitArgs),
    /// Mark node as unschedulable
    Cordon(cmd::drain::CordonArgs),
    /// Mark node as schedulable
    Uncordon(cmd::drain::CordonArgs),
    /// Drain node in preparation for maintenance
    Drain(cmd::drain::DrainArgs),
    /// Update the taints on one or more nodes
    Taint(cmd::taint::TaintArgs),
    /// Display resource (CPU/memory) usage
    #[command(subcommand)]
    Top(cmd::top::TopCommand),
    /// Manage the rollout of a resource
    #[command(subcommand)]
    Rollout(cmd::rollout::RolloutCommand),
    /// Set specific features on objects
    #[command(subcommand)]
    Set(cmd::set::SetCommand),
    /// Show details of a specific resource or group of resources
    Describe(cmd::describe::DescribeArgs),
    /// Modify kubeconfig files
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Output shell completion code for the specified shell (bash, zsh, fish, or powershell)
    Completion(cmd::completion::CompletionArgs),
    /// Auto-scale a deployment, replica set, stateful set, or replication controller
    Autoscale(cmd::autoscale::AutoscaleArgs),
    /// Edit a resource on the server
    Edit(cmd::edit::EditArgs),
    /// Get documentation for a resource
    Explain(cmd::explain::ExplainArgs),
}

/// Upstream accepts `-v=6`, `--v 6` and `-n=ns`; clap needs no help there, but
/// single-dash long flags such as `-namespace` are not upstream either. Kept as
/// the hook where argument quirks get translated.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    args
}

/// `kubectl get`, `kubectl config view`: the command words in `args`, for
/// upstream's `See 'kubectl get --help' for usage.`
fn command_path(args: &[String]) -> String {
    use clap::CommandFactory;
    const VALUE_FLAGS: [&str; 19] = [
        "-n",
        "--namespace",
        "-s",
        "--server",
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "--token",
        "--client-certificate",
        "--client-key",
        "--certificate-authority",
        "-v",
        "--v",
        "-o",
        "--output",
        "-l",
        "--selector",
        "-f",
    ];
    let mut command = Cli::command();
    let mut path = vec!["kubectl".to_string()];
    let mut skip_next = false;
    for arg in args.iter().skip(1) {
        if skip_next {
            skip_next = false;
            continue;
        }
        if arg.starts_with('-') {
            skip_next = VALUE_FLAGS.contains(&arg.as_str());
            continue;
        }
        let Some(sub) = command.find_subcommand(arg).cloned() else {
            break;
        };
        path.push(sub.get_name().to_string());
        command = sub;
    }
    path.join(" ")
}

/// Prints a parse error as upstream does and returns the exit code.
pub fn report_parse_error(err: clap::Error, args: &[String]) -> i32 {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            0
        }
        kind => {
            use clap::error::ContextKind;
            let invalid = err
                .get(ContextKind::InvalidArg)
                .or_else(|| err.get(ContextKind::InvalidSubcommand))
                .map(|v| v.to_string());
            match (kind, invalid) {
                (ErrorKind::UnknownArgument, Some(arg)) => {
                    // Upstream (cobra/pflag) names the flag without its value.
                    let flag = arg.split('=').next().unwrap_or(&arg).to_string();
                    if flag.starts_with("--") {
                        eprintln!("Error: unknown flag: {flag}");
                    } else {
                        let short = flag.trim_start_matches('-').chars().next().unwrap_or('?');
                        eprintln!("Error: unknown shorthand flag: '{short}' in {flag}");
                    }
                }
                (ErrorKind::InvalidSubcommand, Some(cmd)) => {
                    eprintln!(
                        "Error: unknown command \"{cmd}\" for \"{}\"",
                        command_path(args)
                    );
                    eprintln!("Run 'kubectl --help' for usage.");
                    return 1;
                }
                _ => {
                    let rendered = err.render().to_string();
                    let first = rendered
                        .lines()
                        .next()
                        .unwrap_or("error: invalid arguments");
                    eprintln!("{first}");
                }
            }
            eprintln!("See '{} --help' for usage.", command_path(args));
            1
        }
    }
}

/// `-v` as upstream's klog levels: 0-3 warnings, 4-5 info, 6+ request logs.
pub fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0..=3 => "warn",
        4..=5 => "info",
        6..=7 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("kubectl={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
