//! `cargo v6 key generate`: a signing key pair in cosign's format.

use std::path::{Path, PathBuf};

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
    let missing = check_output_dir(dir)?;
    if !missing && let Some(warning) = open_to_others(dir) {
        reporter.warn(warning);
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

/// Whether `dir` must be made; an error (exit 2) when it cannot hold the keys: a file, a link
/// to nothing, or a path through a file.
fn check_output_dir(dir: &Path) -> Result<bool, Error> {
    let shown = crate::diagnostic::display;
    let not_a_dir =
        |path: &Path| Error::input(format!("`{}` is not a directory", shown(path)), None);
    if let Ok(meta) = dir.symlink_metadata() {
        if meta.file_type().is_symlink() && dir.metadata().is_err() {
            let target = std::fs::read_link(dir).unwrap_or_default();
            return Err(Error::input(
                format!(
                    "`{}` is a link to `{}`, which does not exist",
                    shown(dir),
                    shown(&target)
                ),
                Some(
                    "create the directory it points to, or pass another `--output-dir`".to_string(),
                ),
            ));
        }
        return match dir.is_dir() {
            true => Ok(false),
            false => Err(not_a_dir(dir)),
        };
    }
    // Missing: the nearest part of the path that exists must be a directory to create it in.
    match dir
        .ancestors()
        .skip(1)
        .find(|a| a.symlink_metadata().is_ok())
    {
        Some(existing) if !existing.as_os_str().is_empty() && !existing.is_dir() => {
            Err(not_a_dir(existing))
        }
        _ => Ok(true),
    }
}

/// A warning when users other than the owner may write to `dir` (and it has no sticky bit,
/// as /tmp has): they could replace cosign.pub or remove the key.
#[cfg(unix)]
fn open_to_others(dir: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = dir.metadata().ok()?.permissions().mode();
    (mode & 0o022 != 0 && mode & 0o1000 == 0).then(|| {
        format!(
            "`{}` is writable by other users (mode {:o}): they could replace cosign.pub or remove cosign.key; keep keys in a directory only you can write (`chmod go-w`)",
            crate::diagnostic::display(dir),
            mode & 0o777
        )
    })
}

#[cfg(not(unix))]
fn open_to_others(_dir: &Path) -> Option<String> {
    None
}
