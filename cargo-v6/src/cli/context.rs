//! `cargo v6 context`: the files the build will see.

use crate::error::Error;
use crate::report::Reporter;

use super::ManifestArgs;

/// Show the build context as Docker applies `.dockerignore` (what `COPY . /app` copies).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 context --list
  cargo v6 context --list | grep -c .")]
pub struct Args {
    #[command(flatten)]
    manifest: ManifestArgs,
    /// List the files, one per line, relative and sorted.
    #[arg(long, required = true)]
    list: bool,
}

/// Runs `cargo v6 context --list`.
pub fn run(args: Args, _reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    let dir = crate::plan::inputs::context_dir(&manifest)?;
    let mut text = String::new();
    for file in crate::plan::inputs::context_files(&manifest, &dir)? {
        text.push_str(&file);
        text.push('\n');
    }
    crate::report::stdout(&text)
}
