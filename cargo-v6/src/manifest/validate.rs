//! The second pass: every value that ends up in a Dockerfile, a tag or an image reference.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::inherit::Origin;
use super::model::Spans;
use super::raw::{RawBuild, RawManifest};
use super::{
    BASE_PLACEHOLDER, Build, Command, IMAGE_PLACEHOLDER, Manifest, ManifestError, NAME_PLACEHOLDER,
    Publish, Sign,
};
use crate::oci::reference::{ImageName, ImageRef, ReferenceError};
use crate::tags::{self, TagTemplate};
use crate::vantage6::{self, Vantage6Version, Wrapper};
use crate::version::Version;

/// The default of `stall-timeout` and `--stall-timeout`, in seconds.
pub const DEFAULT_STALL_TIMEOUT_SECS: u64 = 120;

/// Turns raw values into validated ones, pointing at the value on failure.
pub(super) struct Validator<'a> {
    /// Which file (member or workspace root) each span is in.
    pub(super) origin: Origin<'a>,
    /// A workspace member's root manifest: release tags default to `{name}-v1.2.3`.
    pub(super) workspace_root: Option<&'a Path>,
}

impl Validator<'_> {
    pub(super) fn error(&self, span: Range<usize>, message: impl Into<String>) -> ManifestError {
        ManifestError::Invalid {
            message: message.into(),
            location: self.origin.locate(span),
            help: None,
        }
    }

    pub(super) fn error_with_help(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ManifestError {
        ManifestError::Invalid {
            message: message.into(),
            location: self.origin.locate(span),
            help: Some(help.into()),
        }
    }

    pub(super) fn manifest(&self, raw: RawManifest) -> Result<Manifest, ManifestError> {
        let dir = self.origin.member_dir().to_path_buf();
        let a = raw.algorithm;
        let wrapper = *a.wrapper.get_ref();
        let name = self.name(&a.name, wrapper)?;
        let vantage6 = self.vantage6(&a.vantage6)?;
        let image = self.image(&a.image, &name)?;
        let version = a
            .version
            .as_ref()
            .map(|v| {
                Version::parse_for(v.get_ref(), wrapper)
                    .map_err(|e| self.error(v.span(), e.to_string()))
            })
            .transpose()?;
        let description = a
            .description
            .as_ref()
            .map(|d| self.single_line(d, "description"))
            .transpose()?;
        let license = a
            .license
            .as_ref()
            .map(|l| self.single_line(l, "license"))
            .transpose()?;
        let tags = self.tags(a.tags.as_ref())?;
        if let Some(output) = raw.store.as_ref().and_then(|s| s.output.as_ref()) {
            self.single_line(output, "store.output")?;
        }
        self.sizes(&a, &raw.build)?;
        let (build, spans) = self.build(raw.build, &dir, &a.wrapper, &vantage6)?;
        let release_tag_prefix = match raw.publish.release_tag_prefix {
            Some(prefix) => self
                .release_tag_prefix(&prefix)?
                .replace(NAME_PLACEHOLDER, &name),
            // cargo-release's form in a workspace, where one repository tags many algorithms.
            None if self.workspace_root.is_some() => format!("{name}-v"),
            None => "v".to_string(),
        };
        let version_from_tag = match (&raw.publish.version_from_tag, &a.version) {
            (Some(from_tag), Some(version))
                if *from_tag.get_ref() && self.origin.is_inherited(&from_tag.span()) =>
            {
                let (line, column) = self.origin.locate(from_tag.span()).line_col();
                return Err(self.error_with_help(
                    version.span(),
                    format!(
                        "`algorithm.version` is set, but the workspace sets `version-from-tag` ({}:{line}:{column})",
                        self.origin.locate(from_tag.span()).path
                    ),
                    "set `version-from-tag = false` under [publish] here to take this version, or remove `version`",
                ));
            }
            (Some(from_tag), Some(_)) if *from_tag.get_ref() => {
                return Err(self.error_with_help(
                    from_tag.span(),
                    "`version-from-tag` and `algorithm.version` cannot both be set",
                    "the release tag on HEAD is the version: remove `version` from [algorithm]",
                ));
            }
            (from_tag, _) => from_tag.as_ref().is_some_and(|f| *f.get_ref()),
        };
        let stall_timeout = match raw.publish.stall_timeout {
            Some(seconds) if !(1..=86_400).contains(seconds.get_ref()) => {
                return Err(self.error_with_help(
                    seconds.span(),
                    "`stall-timeout` must be between 1 and 86400 seconds",
                    "the default is 120: how long a registry or a push may make no progress",
                ));
            }
            Some(seconds) => *seconds.get_ref(),
            None => DEFAULT_STALL_TIMEOUT_SECS,
        };
        let sign = Sign {
            key: raw
                .sign
                .key
                .map(|key| {
                    let text = self.single_line(&key, "sign.key")?;
                    if text.is_empty() {
                        return Err(self.error_with_help(
                            key.span(),
                            "`sign.key` is empty",
                            "write the path of the private key, e.g. \"../keys/cosign.key\"",
                        ));
                    }
                    Ok(self.origin.dir(&key.span()).join(text))
                })
                .transpose()?,
            format: raw.sign.format.map(Spanned::into_inner).unwrap_or_default(),
        };
        Ok(Manifest {
            path: self.origin.member_path().to_path_buf(),
            dir,
            source: self.origin.member_source().to_string(),
            spans: Spans {
                name: self.origin.locate(a.name.span()),
                ..spans
            },
            workspace_root: self.workspace_root.map(Path::to_path_buf),
            store: None,
            name,
            wrapper,
            vantage6,
            image,
            version,
            description,
            license,
            tags,
            build,
            publish: Publish {
                release_tag_prefix,
                insecure: raw.publish.insecure,
                stall_timeout: std::time::Duration::from_secs(stall_timeout),
                version_from_tag,
            },
            sign,
        })
    }

    /// PKG_NAME goes into the Dockerfile and the wrapper's import: a package name, nothing else.
    fn name(&self, name: &Spanned<String>, wrapper: Wrapper) -> Result<String, ManifestError> {
        let text = name.get_ref();
        let valid = match wrapper {
            // R package names: letters, digits and dots, starting with a letter.
            Wrapper::R => {
                text.starts_with(|c: char| c.is_ascii_alphabetic())
                    && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
            }
            // The Python wrapper imports PKG_NAME; minimal images only pass it on.
            Wrapper::Python | Wrapper::Minimal => {
                text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            }
        };
        if valid {
            Ok(text.clone())
        } else {
            Err(self.error_with_help(
                name.span(),
                format!("invalid algorithm name `{}`", text.escape_debug()),
                match wrapper {
                    Wrapper::R => "an R package name has letters, digits and dots, and starts with a letter",
                    _ => "the name is the package the wrapper imports: letters, digits, `_`, `-` and `.`, starting with a letter or `_`",
                },
            ))
        }
    }

    fn vantage6(&self, v: &Spanned<String>) -> Result<Vantage6Version, ManifestError> {
        let text = v.get_ref();
        let parts: Vec<&str> = text.split('.').collect();
        let numbers: Option<Vec<u64>> = parts
            .iter()
            .map(|p| {
                (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect();
        let Some(numbers) = numbers.filter(|n| (2..=3).contains(&n.len())) else {
            return Err(self.error_with_help(
                v.span(),
                format!("invalid vantage6 version `{}`", text.escape_debug()),
                "write MAJOR.MINOR, e.g. \"4.13\"",
            ));
        };
        if !vantage6::SUPPORTED_MAJORS.contains(&numbers[0]) {
            return Err(self.error_with_help(
                v.span(),
                format!("unsupported vantage6 version `{text}`"),
                "cargo v6 has templates for vantage6 3.x, 4.x and 5.x",
            ));
        }
        Ok(Vantage6Version {
            text: text.clone(),
            major: numbers[0],
            minor: numbers[1],
        })
    }

    /// The repository; `{name}` in it is the algorithm's name (a workspace's
    /// `image = "ghcr.io/org/{name}"`).
    fn image(&self, image: &Spanned<String>, name: &str) -> Result<ImageName, ManifestError> {
        if image.get_ref() == IMAGE_PLACEHOLDER {
            return Err(self.error_with_help(
                image.span(),
                "`image` is still the placeholder that `cargo v6 init` wrote",
                "set it to the registry and repository to publish to, e.g. \"ghcr.io/you/algorithm\"",
            ));
        }
        ImageName::parse(&image.get_ref().replace(NAME_PLACEHOLDER, name)).map_err(|e| {
            // The marker already shows the value: say what is wrong, not the value again.
            let reason = match e {
                ReferenceError::NameContainsUppercase { .. } => {
                    "repository names must be lowercase".to_string()
                }
                other => other.to_string(),
            };
            let whose = match image.get_ref().contains(NAME_PLACEHOLDER) {
                true => format!(" for `{name}`"),
                false => String::new(),
            };
            self.error(
                image.span(),
                format!("invalid image reference{whose}: {reason}"),
            )
        })
    }

    /// Values that end up in labels, Dockerfile lines or CI files: one line, no control
    /// characters, and none of the Unicode line and paragraph separators (U+2028, U+2029),
    /// which YAML 1.1 parsers (GitLab's) and JavaScript read as line breaks.
    fn single_line(&self, value: &Spanned<String>, key: &str) -> Result<String, ManifestError> {
        if value
            .get_ref()
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(self.error(
                value.span(),
                format!("`{key}` must be a single line without control characters"),
            ));
        }
        Ok(value.get_ref().clone())
    }

    /// The start of every release tag, so held to git's rules for a tag name (`git
    /// check-ref-format`): a prefix no tag can carry would write CI triggers that never fire.
    fn release_tag_prefix(&self, value: &Spanned<String>) -> Result<String, ManifestError> {
        let text = self.single_line(value, "release-tag-prefix")?;
        let refused = text
            .chars()
            .find(|c| matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
            .map(|c| format!("`{c}`"))
            .or_else(|| {
                ["..", "@{", "//", "/."]
                    .into_iter()
                    .find(|s| text.contains(s))
                    .map(|s| format!("`{s}`"))
            })
            .or_else(|| {
                text.starts_with(['.', '/'])
                    .then(|| "a leading `.` or `/`".to_string())
            });
        match refused {
            Some(what) => Err(self.error_with_help(
                value.span(),
                format!("`release-tag-prefix` holds {what}, which git does not allow in a tag name"),
                "release tags are `{prefix}{version}`, e.g. \"v\" or \"summary-v\"; git refuses spaces, `~ ^ : ? * [ \\`, `..`, `@{` and a leading `.`",
            )),
            None => Ok(text),
        }
    }

    /// A value rendered as the rest of a Dockerfile line: besides one line, it must not end in
    /// `\\`, which would continue the instruction onto the template's next line.
    fn dockerfile_line(&self, value: &Spanned<String>, key: &str) -> Result<String, ManifestError> {
        let text = self.single_line(value, key)?;
        if text.trim_end().ends_with('\\') {
            return Err(self.error(
                value.span(),
                format!("`{key}` must not end with `\\` (it would continue onto the next Dockerfile line)"),
            ));
        }
        Ok(text)
    }

    fn tags(
        &self,
        tags: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Vec<TagTemplate>, ManifestError> {
        let Some(tags) = tags else {
            return Ok(tags::default_templates());
        };
        let templates = tags
            .get_ref()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                TagTemplate::parse(t.get_ref(), i).map_err(|e| self.error(t.span(), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !templates.iter().any(TagTemplate::is_exact) {
            return Err(self.error_with_help(
                tags.span(),
                "`tags` has no exact version tag",
                "include a template with `{{version}}`: it is the tag that is never overwritten",
            ));
        }
        Ok(templates)
    }

    fn build(
        &self,
        raw: RawBuild,
        dir: &Path,
        wrapper_value: &Spanned<Wrapper>,
        vantage6: &Vantage6Version,
    ) -> Result<(Build, Spans), ManifestError> {
        let wrapper = *wrapper_value.get_ref();
        if let Some(b) = raw
            .base
            .as_ref()
            .filter(|b| b.get_ref() == BASE_PLACEHOLDER)
        {
            return Err(self.error_with_help(
                b.span(),
                "`build.base` is still the placeholder that `cargo v6 init` wrote",
                "set it to the base image you build on, e.g. \"ghcr.io/you/algorithm-base:1\"",
            ));
        }
        let base = raw
            .base
            .as_ref()
            .map(|b| {
                ImageRef::parse(b.get_ref())
                    .map_err(|e| self.error(b.span(), format!("invalid base image reference: {e}")))
            })
            .transpose()?;
        let mut args = BTreeMap::new();
        for (key, value) in raw.args {
            if !is_identifier(key.get_ref()) {
                return Err(self.error(
                    key.span(),
                    format!(
                        "invalid build argument name `{}`: use letters, digits and `_`",
                        key.get_ref().escape_debug()
                    ),
                ));
            }
            args.insert(key.into_inner(), value.into_inner());
        }
        let mut labels = BTreeMap::new();
        for (key, value) in raw.labels {
            if key.get_ref().is_empty() || key.get_ref().chars().any(char::is_control) {
                return Err(self.error(key.span(), "invalid label name"));
            }
            labels.insert(key.into_inner(), value.into_inner());
        }
        let network = raw
            .network
            .map(|n| self.word(&n, "network", "e.g. \"host\" or \"none\""))
            .transpose()?;
        let platform = raw
            .platform
            .map(|p| {
                let valid = (2..=3).contains(&p.get_ref().split('/').count())
                    && p.get_ref().split('/').all(|part| {
                        !part.is_empty()
                            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                if valid {
                    Ok(p.into_inner())
                } else {
                    Err(self.error_with_help(
                        p.span(),
                        "invalid platform",
                        "write OS/ARCH[/VARIANT], e.g. \"linux/amd64\"",
                    ))
                }
            })
            .transpose()?;
        let platforms_span = raw.platforms.as_ref().map(|l| self.origin.locate(l.span()));
        let platforms = match raw.platforms {
            None => Vec::new(),
            Some(list) => {
                if platform.is_some() {
                    return Err(self.error_with_help(
                        list.span(),
                        "`platforms` and `platform` are both set",
                        "`platform` builds one image with the engine; `platforms` assembles one per platform: keep one",
                    ));
                }
                let span = list.span();
                let mut platforms: Vec<crate::oci::platform::Platform> = Vec::new();
                for item in list.into_inner() {
                    let platform =
                        crate::oci::platform::Platform::parse(item.get_ref()).map_err(|help| {
                            self.error_with_help(item.span(), "invalid platform", &help)
                        })?;
                    if platforms.contains(&platform) {
                        return Err(self.error(item.span(), "platform listed twice"));
                    }
                    platforms.push(platform);
                }
                if platforms.is_empty() {
                    return Err(self.error_with_help(
                        span,
                        "`platforms` is empty",
                        "name at least one, e.g. [\"linux/amd64\", \"linux/arm64\"], or leave it out to build with the engine",
                    ));
                }
                platforms
            }
        };
        let install = raw
            .install
            .as_ref()
            .map(|i| self.dockerfile_line(i, "build.install"))
            .transpose()?;
        let command = raw.command.as_ref().map(|c| self.command(c)).transpose()?;
        for (value, key) in [
            (raw.install.as_ref().map(|v| v.span()), "install"),
            (raw.command.as_ref().map(|v| v.span()), "command"),
        ] {
            if let (Some(span), false) = (value, wrapper == Wrapper::Minimal) {
                return Err(self.error_with_help(
                    span,
                    format!("`build.{key}` is only used by the minimal wrapper"),
                    format!(
                        "the {} wrapper installs and runs the package itself",
                        wrapper.as_str()
                    ),
                ));
            }
        }
        if let Some(own) = &raw.dockerfile {
            let unused = [
                (raw.base.as_ref().map(|v| v.span()), "base"),
                (raw.templates.as_ref().map(|v| v.span()), "templates"),
                (raw.install.as_ref().map(|v| v.span()), "install"),
                (raw.command.as_ref().map(|v| v.span()), "command"),
            ];
            if let Some((Some(span), key)) = unused.into_iter().find(|(s, _)| s.is_some()) {
                return Err(self.error_with_help(
                    span,
                    format!("`build.{key}` is not used with `build.dockerfile`"),
                    format!(
                        "the project's own Dockerfile (`{}`) says how the image is built: remove `{key}`",
                        own.get_ref()
                    ),
                ));
            }
        } else {
            self.require_base(base.as_ref(), wrapper_value, vantage6)?;
        }
        if wrapper == Wrapper::Minimal && command.is_none() && raw.dockerfile.is_none() {
            return Err(self.error_with_help(
                wrapper_value.span(),
                "the minimal wrapper needs `build.command`",
                "e.g. command = [\"python\", \"-m\", \"my_algorithm\"]",
            ));
        }
        let at =
            |value: &Option<Spanned<String>>| value.as_ref().map(|v| self.origin.locate(v.span()));
        let spans = Spans {
            context: at(&raw.context),
            templates: at(&raw.templates),
            dockerfile: at(&raw.dockerfile),
            platforms: platforms_span,
            name: self.origin.locate(0..0),
        };
        Ok((
            Build {
                context: dir.join(raw.context.map_or_else(|| ".".into(), Spanned::into_inner)),
                base,
                args,
                labels,
                network,
                platform,
                platforms,
                templates: raw
                    .templates
                    .map(|t| self.origin.dir(&t.span()).join(t.into_inner())),
                install,
                command,
                dockerfile: raw
                    .dockerfile
                    .map(|d| {
                        self.single_line(&d, "build.dockerfile")
                            .map(|d| dir.join(d))
                    })
                    .transpose()?,
            },
            spans,
        ))
    }

    /// A base image where vantage6 publishes no default for the wrapper.
    fn require_base(
        &self,
        base: Option<&ImageRef>,
        wrapper: &Spanned<Wrapper>,
        vantage6: &Vantage6Version,
    ) -> Result<(), ManifestError> {
        if base.is_some() {
            return Ok(());
        }
        let Some(why) = vantage6::no_default_base(*wrapper.get_ref(), vantage6.major) else {
            return Ok(());
        };
        Err(self.error_with_help(
            wrapper.span(),
            format!("`build.base` is required: {why}"),
            "set `base` under [build] to an image you maintain, e.g. base = \"ghcr.io/you/algorithm-base:1\"",
        ))
    }

    fn command(&self, command: &Spanned<Command>) -> Result<Command, ManifestError> {
        let lines: Vec<&String> = match command.get_ref() {
            Command::Exec(args) if args.is_empty() => {
                return Err(self.error(command.span(), "`build.command` is empty"));
            }
            Command::Exec(args) => args.iter().collect(),
            Command::Shell(line) => {
                if line.trim_end().ends_with('\\') {
                    return Err(self.error(
                        command.span(),
                        "`build.command` must not end with `\\` (it would continue onto the next Dockerfile line)",
                    ));
                }
                vec![line]
            }
        };
        if lines.iter().any(|l| l.chars().any(char::is_control)) {
            return Err(self.error(
                command.span(),
                "`build.command` must not contain newlines or control characters",
            ));
        }
        Ok(command.get_ref().clone())
    }

    fn word(
        &self,
        value: &Spanned<String>,
        key: &str,
        help: &str,
    ) -> Result<String, ManifestError> {
        let text = value.get_ref();
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        {
            return Err(self.error_with_help(
                value.span(),
                format!("invalid {key} `{}`", text.escape_debug()),
                help,
            ));
        }
        Ok(text.clone())
    }
}
fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
