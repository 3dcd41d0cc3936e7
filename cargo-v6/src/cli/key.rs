//! `cargo v6 key generate`: a signing key pair in cosign's format.

use std::path::PathBuf;

use crate::error::Error;
use crate::report::Reporter;
use crate::sign::keys::{self, NewKeys, Password};

/// Manage the keys that sign published images (cosign's key format).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeyCommand {
    Generate(GenerateArgs),
}

/// Write a new key pair: cosign.key (the private key, encrypted with a password) and cosign.pub.
///
/// A `--output-dir` that does not exist is created, readable by its owner only. The password is read from COSIGN_PASSWORD when it is set, else asked for twice on the
/// terminal. Existing key files are never overwritten. Keys made by `cosign generate-key-pair`
/// work as well.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 key generate                        cosign.key and cosign.pub here
  COSIGN_PASSWORD=... cargo v6 key generate --output-dir ~/.v6-keys")]
struct GenerateArgs {
    /// Where to write cosign.key and cosign.pub (created, mode 0700, if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    output_dir: PathBuf,
}

/// Runs `cargo v6 key ...`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    match args.command {
        KeyCommand::Generate(args) => generate(args, reporter),
    }
}

fn generate(args: GenerateArgs, reporter: &Reporter) -> Result<(), Error> {
    let dir = &args.output_dir;
    let missing = dir.symlink_metadata().is_err();
    if !missing && !dir.is_dir() {
        return Err(Error::input(
            format!("`{}` is not a directory", crate::diagnostic::display(dir)),
            None,
        ));
    }
    // Before the password is asked for: an existing key is refused either way.
    for name in [keys::PRIVATE_KEY_FILE, keys::PUBLIC_KEY_FILE] {
        let path = dir.join(name);
        if path.symlink_metadata().is_ok() {
            return Err(keys::KeyError::Exists {
                path: crate::diagnostic::display(&path),
            }
            .into());
        }
    }
    let password = Password::obtain(true)?;
    let new = NewKeys::generate(&password)?;
    // Made only once a password is at hand: a refused run leaves nothing behind.
    if missing {
        keys::create_private_dir(dir)?;
        reporter.status(
            "Created",
            format!(
                "{} (private: only you can read it)",
                crate::diagnostic::display(dir)
            ),
        );
    }
    let (private, public) = keys::write_new(dir, &new)?;
    reporter.status(
        "Generated",
        format!(
            "{} (the private key, encrypted: keep it and its password secret, never commit it)",
            crate::diagnostic::display(&private)
        ),
    );
    reporter.status(
        "Generated",
        format!(
            "{} (the public key {}: give it to node operators to verify with)",
            crate::diagnostic::display(&public),
            new.id
        ),
    );
    Ok(())
}
