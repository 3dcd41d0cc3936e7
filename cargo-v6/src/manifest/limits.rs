//! Sizes: what one build request can carry, checked when the manifest loads.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::raw::{RawAlgorithm, RawBuild};
use super::validate::Validator;
use super::{Command, ManifestError};

// Measured on dockerd 20.10 with the classic builder: a Dockerfile line of 65,535 bytes is
// accepted, one of 65,536 is refused ("dockerfile line greater than max allowed size of
// 65535"). The build arguments, and the labels that cannot be written on a Dockerfile line,
// travel in the build request's URL as JSON, URL-encoded: the HTTP client (hyper's
// `http::Uri`) refuses a URI longer than 65,534 bytes ("uri too long"; a 65,000-byte build
// argument passes, 65,300 bytes fail), while the engine itself would take up to 1 MiB (HTTP
// 431 beyond). Both limits are checked when the manifest is loaded, with 4 KiB to spare for
// what cargo v6 adds (its own labels; the socket, path, tag and options of the URL).

/// The most that cargo v6's one `LABEL` line may take for the labels of the manifest
/// (`algorithm.name`, `description`, `license` and `build.labels`, quoted), and the most a
/// `build.install` or `build.command` line may take.
pub const DOCKERFILE_LINE_MAX: usize = 60 * 1024;

/// The most that the build arguments and the labels sent with them may take in the build
/// request's URL, encoded.
pub const BUILD_URL_MAX: usize = 60 * 1024;

/// Whether a label can be written on the Dockerfile's `LABEL` line: no control character
/// (the instruction must stay one line) and no `=` in the key (the parser splits on it).
/// The others travel in the build request's URL.
pub fn label_fits_on_line(key: &str, value: &str) -> bool {
    !key.contains('=') && !key.chars().any(char::is_control) && !value.chars().any(char::is_control)
}

/// The length of `text` as a double-quoted Dockerfile word, `\`, `"` and `$` escaped.
pub fn quoted_len(text: &str) -> usize {
    let escaped = text.bytes().filter(|b| matches!(b, b'\\' | b'"' | b'$'));
    text.len() + 2 + escaped.count()
}

/// The length of `text` in the build request's URL: a JSON string, URL-encoded as a form
/// (letters, digits, `*-._` and space take one byte, every other byte three).
fn url_len(text: &str) -> usize {
    let json = serde_json::to_string(text).expect("a string serializes");
    json.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_' | b' ') {
                1
            } else {
                3
            }
        })
        .sum()
}

/// A size in bytes for messages: `812 bytes`, `60.0 KiB`, `1.2 MiB`.
fn human_size(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// `build.labels.KEY` with the key quoted as TOML needs it.
fn label_field(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        format!("build.labels.{key}")
    } else {
        format!("build.labels.{}", toml::Value::String(key.to_owned()))
    }
}

/// One value's share of a size limit, and where it was written.
struct Share {
    field: String,
    span: Range<usize>,
    bytes: usize,
}

impl Validator<'_> {
    /// Refuses what the engine or the HTTP client would refuse for its size, naming the
    /// field, before anything is sent: the labels on the `LABEL` line, the build arguments
    /// and labels in the URL, and the `RUN`/`CMD` lines of the minimal wrapper.
    pub(super) fn sizes(&self, a: &RawAlgorithm, b: &RawBuild) -> Result<(), ManifestError> {
        // The labels as `plan::labels` makes them from the manifest (`build.labels` win);
        // the labels it adds from the version and git are in the 4 KiB to spare.
        let mut labels: BTreeMap<&str, (String, &Spanned<String>, Range<usize>)> = BTreeMap::new();
        labels.insert(
            "org.opencontainers.image.title",
            ("algorithm.name".to_owned(), &a.name, a.name.span()),
        );
        for (key, field, value) in [
            (
                "org.opencontainers.image.description",
                "algorithm.description",
                &a.description,
            ),
            (
                "org.opencontainers.image.licenses",
                "algorithm.license",
                &a.license,
            ),
        ] {
            if let Some(value) = value {
                labels.insert(key, (field.to_owned(), value, value.span()));
            }
        }
        for (key, value) in &b.labels {
            labels.insert(
                key.get_ref(),
                (label_field(key.get_ref()), value, key.span()),
            );
        }
        let mut line = Vec::new();
        let mut url = Vec::new();
        for (key, (field, value, key_span)) in labels {
            let value_text = value.get_ref();
            if label_fits_on_line(key, value_text) {
                let (k, v) = (quoted_len(key), quoted_len(value_text));
                let span = if k > v { key_span } else { value.span() };
                line.push(Share {
                    field,
                    span,
                    bytes: k + 1 + v + 1,
                });
            } else {
                let (k, v) = (url_len(key), url_len(value_text));
                let span = if k > v { key_span } else { value.span() };
                url.push(Share {
                    field,
                    span,
                    bytes: k + v + 6,
                });
            }
        }
        for (key, value) in &b.args {
            let (k, v) = (url_len(key.get_ref()), url_len(value.get_ref()));
            let span = if k > v { key.span() } else { value.span() };
            let field = format!("build.args.{}", key.get_ref());
            url.push(Share {
                field,
                span,
                bytes: k + v + 6,
            });
        }
        let too_large = |shares: Vec<Share>, base: usize, max: usize, what: &str, help: &str| {
            let total = base + shares.iter().map(|s| s.bytes).sum::<usize>();
            match shares.into_iter().max_by_key(|s| s.bytes) {
                Some(largest) if total > max => Err(self.error_with_help(
                    largest.span,
                    format!(
                        "`{}` is too large: {what} would take {}, more than the {} allowed",
                        largest.field,
                        human_size(total),
                        human_size(max)
                    ),
                    help,
                )),
                _ => Ok(()),
            }
        };
        too_large(
            line,
            "LABEL ".len(),
            DOCKERFILE_LINE_MAX,
            "the labels on the Dockerfile's `LABEL` line",
            "the engine refuses Dockerfile lines over 64 KiB (cargo v6 keeps 4 KiB of the line for the labels it adds): shorten the text, or ship it as a file in the build context",
        )?;
        too_large(
            url,
            "buildargs={}labels={}".len() * 3,
            BUILD_URL_MAX,
            "the build arguments and labels sent in the build request's URL (as URL-encoded JSON)",
            "a build request's URL holds at most 64 KiB (cargo v6 keeps 4 KiB for the rest of it); labels with a line break or control character, and label names with `=`, travel there too: pass large data as a file in the build context",
        )?;
        let command_len = b.command.as_ref().map(|c| match c.get_ref() {
            Command::Exec(args) => serde_json::to_string(args).map_or(0, |j| j.len()),
            Command::Shell(line) => line.len(),
        });
        for (field, span, bytes) in [
            (
                "build.install",
                b.install.as_ref().map(Spanned::span),
                b.install.as_ref().map(|i| i.get_ref().len()),
            ),
            (
                "build.command",
                b.command.as_ref().map(Spanned::span),
                command_len,
            ),
        ] {
            if let (Some(span), Some(bytes)) = (span, bytes)
                && bytes > DOCKERFILE_LINE_MAX
            {
                return Err(self.error_with_help(
                    span,
                    format!(
                        "`{field}` is too large: its Dockerfile line would take {}, more than the {} allowed",
                        human_size(bytes),
                        human_size(DOCKERFILE_LINE_MAX)
                    ),
                    "the engine refuses Dockerfile lines over 64 KiB: put the commands in a script in the build context and run that",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::Manifest;

    const VALID: &str = "[algorithm]\nname = \"a\"\nwrapper = \"python\"\nvantage6 = \"4.13\"\nimage = \"ghcr.io/o/a\"\nversion = \"1.0.0\"\n";

    /// `VALID` with `extra` lines appended, as a minimal project when `minimal` (for
    /// `install` and `command`).
    fn sized(algorithm: &str, build: &str) -> Result<Manifest, ManifestError> {
        let text = format!("{VALID}{algorithm}\n[build]\n{build}\n");
        Manifest::parse(Path::new("v6.toml"), text)
    }

    /// The field and `LINE:COL` a size error names.
    fn refused(result: Result<Manifest, ManifestError>) -> (String, String) {
        match result {
            Err(ManifestError::Invalid {
                message,
                location,
                help,
            }) => {
                let (line, col) = location.line_col();
                assert!(help.is_some_and(|h| h.contains("64 KiB")), "{message}");
                (message, format!("{line}:{col}"))
            }
            other => panic!("not refused with a place: {other:?}"),
        }
    }

    #[test]
    fn labels_too_large_for_the_label_line_name_their_field() {
        let big = "d".repeat(DOCKERFILE_LINE_MAX);
        let (message, at) = refused(sized(&format!("description = \"{big}\""), ""));
        assert!(
            message.starts_with("`algorithm.description` is too large: the labels on the Dockerfile's `LABEL` line would take 60.1 KiB, more than the 60.0 KiB allowed"),
            "{message}"
        );
        assert_eq!(at, "7:15");
        // Together: the largest one is named.
        let half = "x".repeat(DOCKERFILE_LINE_MAX / 2);
        let (message, at) = refused(sized(
            &format!("license = \"{half}\""),
            &format!(
                "labels = {{ \"org.example.a\" = \"{half}{}\" }}",
                "y".repeat(40)
            ),
        ));
        assert!(
            message.starts_with("`build.labels.\"org.example.a\"` is too large"),
            "{message}"
        );
        assert_eq!(at, "9:30");
        // Below the limit, or replaced by a short `build.labels` value: fine.
        let fits = "d".repeat(DOCKERFILE_LINE_MAX - 200);
        sized(&format!("description = \"{fits}\""), "").unwrap();
        sized(
            &format!("description = \"{big}\""),
            "labels = { \"org.opencontainers.image.description\" = \"short\" }",
        )
        .unwrap();
    }

    #[test]
    fn values_too_large_for_the_url_name_their_field() {
        let (message, at) = refused(sized(
            "",
            &format!("args = {{ BIG = \"{}\" }}", "x".repeat(BUILD_URL_MAX)),
        ));
        assert!(
            message.starts_with("`build.args.BIG` is too large: the build arguments and labels sent in the build request's URL (as URL-encoded JSON) would take 60.1 KiB"),
            "{message}"
        );
        assert_eq!(at, "9:16");
        // Encoded: a `/` takes three bytes.
        let slashes = "/".repeat(BUILD_URL_MAX / 3);
        let (message, _) = refused(sized("", &format!("args = {{ PATHS = \"{slashes}\" }}")));
        assert!(
            message.starts_with("`build.args.PATHS` is too large"),
            "{message}"
        );
        sized(
            "",
            &format!(
                "args = {{ PATHS = \"{}\" }}",
                &slashes[..slashes.len() - 100]
            ),
        )
        .unwrap();
        // A label with a line break travels in the URL too.
        let lines = "line\\n".repeat(BUILD_URL_MAX / 8);
        let (message, at) = refused(sized(
            "",
            &format!("labels = {{ \"notes\" = \"{lines}\" }}"),
        ));
        assert!(
            message.starts_with("`build.labels.notes` is too large"),
            "{message}"
        );
        assert_eq!(at, "9:22");
        sized(
            "",
            &format!("args = {{ BIG = \"{}\" }}", "x".repeat(BUILD_URL_MAX - 100)),
        )
        .unwrap();
    }

    #[test]
    fn dockerfile_lines_of_the_minimal_wrapper_are_bounded() {
        let minimal = VALID.replace("\"python\"", "\"minimal\"");
        let parse = |build: &str| {
            Manifest::parse(
                Path::new("v6.toml"),
                format!("{minimal}\n[build]\nbase = \"busybox:1\"\n{build}\n"),
            )
        };
        let long = "x".repeat(DOCKERFILE_LINE_MAX + 1);
        let (message, at) = refused(parse(&format!(
            "install = \"{long}\"\ncommand = [\"true\"]"
        )));
        assert!(
            message.starts_with("`build.install` is too large"),
            "{message}"
        );
        assert_eq!(at, "10:11");
        let (message, _) = refused(parse(&format!("command = [\"{long}\"]")));
        assert!(
            message.starts_with("`build.command` is too large"),
            "{message}"
        );
        parse(&format!("command = \"{}\"", &long[..DOCKERFILE_LINE_MAX])).unwrap();
    }

    #[test]
    fn sizes_are_measured_as_sent() {
        assert_eq!(quoted_len(r#"a"b$c\d"#), 7 + 2 + 3);
        // `"ab c/é\n"`: quotes 3+3, a b c 1+1+1, space 1, `/` 3, é 3+3, `\n` 3+1.
        assert_eq!(url_len("ab c/é\n"), 6 + 3 + 1 + 3 + 6 + 4);
        assert_eq!(human_size(812), "812 bytes");
        assert_eq!(human_size(61_440), "60.0 KiB");
        assert_eq!(human_size(1_300_000), "1.2 MiB");
        assert_eq!(
            label_field("org.example.x"),
            "build.labels.\"org.example.x\""
        );
        assert_eq!(label_field("team_name-2"), "build.labels.team_name-2");
    }
}
