//! `cargo v6 init`: write a v6.toml for the project in the current directory.

use std::path::Path;

use crate::detect::{self, ProjectFiles};
use crate::error::Error;
use crate::manifest;
use crate::report::Reporter;
use crate::vantage6::{self, Wrapper};

/// Write v6.toml for the project in the current directory, from what can be detected.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 init
  cargo v6 init --image ghcr.io/you/my-algorithm --vantage6 4.15
  cargo v6 init --wrapper minimal --name my_tool")]
pub struct Args {
    /// Wrapper type (default: detected from the project).
    #[arg(long, value_enum)]
    wrapper: Option<WrapperArg>,
    /// Package name (PKG_NAME; default: from the project's metadata or Dockerfile).
    #[arg(long)]
    name: Option<String>,
    /// Registry and repository to publish to (default: ghcr.io/OWNER/REPO for a GitHub remote).
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// vantage6 version targeted, MAJOR.MINOR (default: from the Dockerfile, else the newest).
    #[arg(long, value_name = "VERSION")]
    vantage6: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum WrapperArg {
    Python,
    R,
    Minimal,
}

impl From<WrapperArg> for Wrapper {
    fn from(w: WrapperArg) -> Self {
        match w {
            WrapperArg::Python => Wrapper::Python,
            WrapperArg::R => Wrapper::R,
            WrapperArg::Minimal => Wrapper::Minimal,
        }
    }
}

/// Runs `cargo v6 init`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let dir = super::current_dir()?;
    let target = dir.join(manifest::FILE_NAME);
    if target.exists() {
        return Err(Error::Failed {
            message: format!("`{}` already exists", manifest::FILE_NAME),
            help: Some("edit it, or remove it to start over".to_string()),
        });
    }
    let read = |name: &str| {
        crate::files::read_regular_text(&dir.join(name), crate::files::SMALL_FILE_MAX).ok()
    };
    let found = detect::detect(&ProjectFiles {
        pyproject: read("pyproject.toml"),
        setup_cfg: read("setup.cfg"),
        setup_py: read("setup.py"),
        description: read("DESCRIPTION"),
        dockerfile: read("Dockerfile"),
    });

    let wrapper = match (args.wrapper, found.wrapper) {
        (Some(w), _) => w.into(),
        (None, Some((w, from))) => {
            reporter.status("Detected", format!("{} project ({from})", w.as_str()));
            w
        }
        (None, None) => {
            reporter.note(
                "no pyproject.toml, setup.cfg, setup.py or DESCRIPTION: using the minimal wrapper",
            );
            Wrapper::Minimal
        }
    };
    let name = match (args.name, found.pkg_name, found.name) {
        (Some(name), _, _) => name,
        (None, Some(pkg), _) => {
            reporter.status(
                "Detected",
                format!("name `{pkg}` (ARG PKG_NAME in Dockerfile)"),
            );
            pkg
        }
        (None, None, Some((dist, from))) => {
            // The Python wrapper imports PKG_NAME: a distribution `my-algo` is imported as `my_algo`.
            let name = if wrapper == Wrapper::Python {
                dist.replace('-', "_")
            } else {
                dist.clone()
            };
            reporter.status(
                "Detected",
                format!("name `{name}` (from `{dist}` in {from})"),
            );
            name
        }
        (None, None, None) => dir
            .file_name()
            .map(|n| n.to_string_lossy().replace('-', "_"))
            .unwrap_or_else(|| "algorithm".to_string()),
    };
    let vantage6 = match (args.vantage6, found.vantage6) {
        (Some(v), _) => v,
        (None, Some((v, why))) => {
            reporter.status("Detected", format!("vantage6 {v} ({why})"));
            v
        }
        (None, None) => vantage6::NEWEST.to_string(),
    };
    let image = args
        .image
        .or_else(|| {
            let source = crate::git::read(&dir, &dir)?.source?;
            let image = detect::image_from_remote(&source)?;
            reporter.status("Detected", format!("image {image} (GitHub remote)"));
            Some(image)
        })
        .unwrap_or_else(|| {
            reporter.warn(format!(
                "no --image and no GitHub remote: set `image` in {} before publishing",
                manifest::FILE_NAME
            ));
            manifest::IMAGE_PLACEHOLDER.to_string()
        });

    let text = manifest_text(wrapper, &name, &vantage6, &image);
    check(&text)?;
    std::fs::write(&target, &text).map_err(|source| Error::Write {
        path: manifest::FILE_NAME.to_string(),
        source,
    })?;
    reporter.status(
        "Created",
        format!(
            "{} ({} wrapper, vantage6 {vantage6})",
            manifest::FILE_NAME,
            wrapper.as_str()
        ),
    );
    Ok(())
}

/// Validates the manifest before writing it, with the same rules as every other command: a
/// bad `--name`, `--vantage6` or `--image` is exit 2 and nothing is written. Only the
/// placeholders `init` writes on purpose may remain for the user to fill in.
fn check(text: &str) -> Result<(), Error> {
    match manifest::Manifest::parse(Path::new(manifest::FILE_NAME), text.to_string()) {
        Err(manifest::ManifestError::Invalid {
            message, location, ..
        }) => {
            let value = location
                .source
                .get(location.span.clone())
                .unwrap_or_default();
            if value.contains(manifest::IMAGE_PLACEHOLDER)
                || value.contains(manifest::BASE_PLACEHOLDER)
            {
                return Ok(());
            }
            let shown = value.trim_matches('"');
            let message = if message.contains(shown) {
                message
            } else {
                format!("{message} (`{shown}`)")
            };
            Err(Error::input(
                format!("cannot write {}: {message}", manifest::FILE_NAME),
                Some(
                    "fix the value given to `cargo v6 init`, or what it was detected from"
                        .to_string(),
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn manifest_text(wrapper: Wrapper, name: &str, vantage6: &str, image: &str) -> String {
    let mut text = format!(
        "# cargo v6 manifest: see v6.toml.example for every key.\n\
         [algorithm]\n\
         name = {}\n\
         wrapper = \"{}\"\n\
         vantage6 = {}\n\
         image = {}\n\
         # version = \"1.0.0\"  # default: read from the project's metadata\n",
        toml_string(name),
        wrapper.as_str(),
        toml_string(vantage6),
        toml_string(image),
    );
    let needs_base = wrapper != Wrapper::Python || vantage6.starts_with("3.");
    if needs_base {
        text.push_str(&format!(
            "\n[build]\n# There is no maintained default base image for this wrapper: name yours.\nbase = \"{}\"\n",
            manifest::BASE_PLACEHOLDER
        ));
        if wrapper == Wrapper::Minimal {
            text.push_str("command = [\"sh\", \"-c\", \"echo replace me\"]\n");
        }
    }
    text
}
