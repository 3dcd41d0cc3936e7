//! `cargo v6 doctor`: is everything a publish needs reachable? One line per check.

use crate::error::Error;
use crate::report::Reporter;

use super::ManifestArgs;

/// Check the Docker engine, the registry and the credentials (and uv, for assembled images),
/// and say how to fix what fails.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 doctor
  DOCKER_HOST=unix:///run/user/1000/docker.sock cargo v6 doctor")]
pub struct Args {
    #[command(flatten)]
    manifest: ManifestArgs,
}

/// Runs `cargo v6 doctor`; fails (exit 1) if any check fails. It makes the checks a publish
/// makes before acting, so that what doctor calls fine, publish does not refuse.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    super::runtime()?.block_on(async {
        let mut failed = 0;
        let mut fail = |error: Error| {
            failed += 1;
            reporter.error(&error);
        };
        let target = crate::publish::Target::for_manifest(&manifest, None);
        // A push hands the registry credentials to the engine: the same refusal as publish's.
        let credentials = target.as_ref().ok().and_then(|t| t.credentials.as_ref());
        let engine = crate::engine::Engine::connect()
            .await
            .and_then(|engine| engine.check_credentials_path(credentials).map(|()| engine));
        match engine {
            Ok(engine) => reporter.status("ok", format!("Docker engine at {}", engine.endpoint())),
            Err(e) => fail(Error::from(e)),
        }
        match target {
            Ok(crate::publish::Target {
                registry,
                credentials,
            }) => {
                let who = match &credentials {
                    Some(c) => format!("as `{}` (credentials from {})", c.username, c.source),
                    None => "anonymously (no credentials found)".to_string(),
                };
                match registry.check(&manifest.image).await {
                    Ok(()) => reporter.status(
                        "ok",
                        format!("registry {} reachable {who}", manifest.image.domain()),
                    ),
                    Err(e) => fail(Error::from(e)),
                }
            }
            Err(e) => fail(Error::from(e)),
        }
        // An assembled image needs uv and its base's platforms, not the engine.
        if !manifest.build.platforms.is_empty() {
            let uv = crate::assemble::uv_program();
            match crate::assemble::uv_version(&uv) {
                Ok(version) => reporter.status("ok", format!("uv {version} assembles the images")),
                Err(why) => fail(Error::Failed {
                    message: format!("`[build] platforms` assembles the images with uv, and {why}"),
                    help: Some("install uv (`pip install uv`, or see https://docs.astral.sh/uv/), or set CARGO_V6_UV to its path".to_string()),
                }),
            }
        }
        if failed == 0 {
            Ok(())
        } else {
            Err(Error::Failed {
                message: format!("{failed} check(s) failed"),
                help: None,
            })
        }
    })
}
