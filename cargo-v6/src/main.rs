//! `cargo-v6`: thin entry point. Parses arguments, runs the command, reports the error.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One rustls crypto provider for the process, aws-lc-rs: the one reqwest (oci-client's
    // HTTP client) is built with and sigstore's `rustls-tls` backend uses, and the only one
    // rustls is compiled with here (no `ring`). reqwest falls back to it anyway, and bollard
    // speaks no TLS; installing it makes any later TLS user agree rather than panic when a
    // dependency brings a second provider. `Err` means one is installed already: fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
