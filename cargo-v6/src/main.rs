//! `cargo-v6`: thin entry point. Parses arguments, runs the command, reports the error.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `cargo v6 X` runs `cargo-v6 v6 X`; `cargo-v6 X` works as well.
    let mut args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "v6") {
        args.remove(1);
    }
    let cli = match cargo_v6::cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        // Help and --version exit 0; usage errors exit 2, as clap decides.
        Err(e) => e.exit(),
    };
    let reporter = cargo_v6::report::Reporter::new(cli.verbosity());
    let json = cli.json_output();
    match cargo_v6::cli::run(cli, &reporter) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cargo_v6::error::Error::StdoutClosed) => ExitCode::SUCCESS,
        Err(error) => {
            reporter.error(&error);
            if json {
                // Best effort: stdout may be gone too, and the exit code says it all anyway.
                let _ = cargo_v6::report::stdout(&cargo_v6::report::error_json(&error));
            }
            ExitCode::from(error.exit_code() as u8)
        }
    }
}
