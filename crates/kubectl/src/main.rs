//! Our kubectl: upstream kubectl v1.32's everyday verbs with the same flags,
//! output and exit codes.

use clap::Parser;

mod cli;
mod client;
mod cmd;
mod config;
mod context;
mod errors;
mod manifest;
mod output;
mod printers;
mod resource;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let args = cli::normalize_args(args);
    if let Some(words) = cmd::complete::request(&args) {
        let descriptions = !args.iter().any(|a| a == cmd::complete::COMPLETE_NO_DESC);
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(cmd::complete::run(&words, descriptions)),
            Err(err) => eprintln!("error: {err}"),
        }
        return;
    }
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => std::process::exit(cli::report_parse_error(err, &args)),
    };
    cli::init_logging(cli.verbosity);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(cmd::run(cli)) {
        Ok(()) => 0,
        Err(err) => {
            err.print();
            1
        }
    };
    std::process::exit(code);
}
