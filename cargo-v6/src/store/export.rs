//! The store's JSON from a checked `[store]`: what `cargo v6 store export` prints and what
//! publish writes to `store.output` after a push.
//!
//! `image` is the exact version tag just published, with its digest appended
//! (`REPO:TAG@sha256:...`) for vantage6 4.6 and later: the store's `parse_image_name` takes
//! that form since 4.6 (it keeps the tag, and resolves the digest from the registry itself),
//! and the input schema has no separate digest field (an unknown key is refused). Before 4.6
//! the store would read the digest as the tag, so the image carries the tag only.
//!
//! An image of several platforms (`[build] platforms`) is a Docker manifest list, and the
//! store asks for it with one `Accept: application/vnd.docker.distribution.manifest.v2+json`:
//! by tag the registry answers with the linux/amd64 image's manifest (the store would record
//! a digest an arm64 node cannot run), by digest with the list itself. Its `image` is
//! therefore `REPO@sha256:...`, the list's digest alone: the store's `parse_image_name` keeps
//! the tag when both are given.

use std::path::PathBuf;

use serde::Serialize;

use crate::diagnostic::display;
use crate::manifest::Manifest;
use crate::oci::reference::{Digest, TaggedImage};

use super::{RawArgument, RawFunction, Store, StoreError, store_text, to_json};

/// The exported document and what the user should know about it.
#[derive(Debug)]
pub struct Export {
    /// The JSON text, pretty-printed, with a final newline.
    pub json: String,
    /// Notes for the user (e.g. a digest left out for an old vantage6).
    pub notes: Vec<String>,
    /// Its `image`, as written in it (what the store is asked about).
    pub image: String,
}

/// The store's JSON for `store`, with `image` pointing at `image` (and `digest`, see the
/// module's notes).
pub fn document(
    manifest: &Manifest,
    store: &Store,
    image: &TaggedImage,
    digest: Option<&Digest>,
) -> Export {
    let mut notes = Vec::new();
    let takes_digest = manifest.vantage6.major > 4
        || (manifest.vantage6.major == 4 && manifest.vantage6.minor >= 6);
    let platforms = manifest.build.platforms.len();
    let image = match digest {
        Some(digest) if takes_digest && platforms > 1 => {
            notes.push(format!(
                "`image` names the manifest list of {platforms} platforms by its digest alone: by tag the store would record the linux/amd64 image's digest, which other platforms' nodes cannot run"
            ));
            format!("{}@{digest}", image.image)
        }
        Some(digest) if takes_digest => format!("{image}@{digest}"),
        Some(_) if platforms > 1 => {
            notes.push(format!(
                "`image` has the tag only: the store of vantage6 {} cannot read a digest (4.6 and later can), and by tag it records the linux/amd64 image of this manifest list, which nodes of other platforms cannot run",
                manifest.vantage6
            ));
            image.to_string()
        }
        Some(digest) => {
            notes.push(format!(
                "`image` has the tag only: the store of vantage6 {} cannot read `TAG@DIGEST` (4.6 and later can); it resolves {digest} from the tag",
                manifest.vantage6
            ));
            image.to_string()
        }
        None => image.to_string(),
    };
    let s = &store.section;
    let text = |v: &Option<toml::Spanned<String>>| v.as_ref().map(|v| v.get_ref().clone());
    let algorithm = Algorithm {
        name: store.name.clone(),
        description: text(&s.description),
        image: image.clone(),
        vantage6_version: manifest.vantage6.text.clone(),
        code_url: text(&s.code_url),
        documentation_url: text(&s.documentation_url),
        partitioning: text(&s.partitioning),
        submission_comments: text(&s.submission_comments),
        functions: s
            .functions
            .iter()
            .flatten()
            .map(|f| function(f.get_ref()))
            .collect(),
    };
    // Serializing plain strings, numbers and maps cannot fail.
    let mut json = serde_json::to_string_pretty(&algorithm).unwrap_or_default();
    json.push('\n');
    Export { json, notes, image }
}

/// Writes the store's JSON for the image just published to `store.output` (relative to
/// v6.toml), so that the file beside the project always names the current digest. Publish
/// calls it after a push; nothing is written (and `None` returned) without a `[store]`
/// section or without `output` in it.
pub fn refresh_after_publish(
    manifest: &Manifest,
    image: &TaggedImage,
    digest: &Digest,
) -> Result<Option<PathBuf>, StoreError> {
    let Some(store) = super::load(manifest)? else {
        return Ok(None);
    };
    let Some(path) = store.output.clone() else {
        return Ok(None);
    };
    let export = document(manifest, &store, image, Some(digest));
    crate::files::write_whole(&path, export.json.as_bytes()).map_err(|source| {
        StoreError::Write {
            path: display(&path),
            source,
        }
    })?;
    Ok(Some(path))
}

fn function(f: &RawFunction) -> Function {
    let text = |v: &Option<toml::Spanned<String>>| v.as_ref().map(|v| v.get_ref().clone());
    Function {
        name: text(&f.name).unwrap_or_default(),
        display_name: text(&f.display_name),
        description: text(&f.description),
        kind: text(&f.kind),
        step_type: text(&f.step_type),
        standalone: f.standalone.as_ref().map(|s| *s.get_ref()),
        databases: f.databases.as_ref().map(|databases| {
            databases
                .iter()
                .map(|d| {
                    let d = d.get_ref();
                    Database {
                        name: text(&d.name).unwrap_or_default(),
                        description: text(&d.description),
                        multiple: d.multiple.as_ref().map(|m| *m.get_ref()),
                    }
                })
                .collect()
        }),
        arguments: f
            .arguments
            .as_ref()
            .map(|arguments| arguments.iter().map(|a| argument(a.get_ref())).collect()),
        ui_visualizations: f.ui_visualizations.as_ref().map(|visualizations| {
            visualizations
                .iter()
                .map(|v| {
                    let v = v.get_ref();
                    Visualization {
                        name: text(&v.name).unwrap_or_default(),
                        description: text(&v.description),
                        kind: text(&v.kind).unwrap_or_default(),
                        schema: v
                            .schema
                            .as_ref()
                            .and_then(|s| to_json(&toml::Value::Table(s.get_ref().clone()))),
                    }
                })
                .collect()
        }),
    }
}

fn argument(a: &RawArgument) -> Argument {
    let text = |v: &Option<toml::Spanned<String>>| v.as_ref().map(|v| v.get_ref().clone());
    let value =
        |v: &Option<toml::Spanned<toml::Value>>| v.as_ref().and_then(|v| store_text(v.get_ref()));
    Argument {
        name: text(&a.name).unwrap_or_default(),
        display_name: text(&a.display_name),
        description: text(&a.description),
        kind: text(&a.kind).unwrap_or_default(),
        allowed_values: a.allowed_values.as_ref().map(|values| {
            values
                .get_ref()
                .iter()
                .filter_map(|v| to_json(v.get_ref()))
                .collect()
        }),
        has_default_value: a.has_default_value.as_ref().map(|h| *h.get_ref()),
        default_value: value(&a.default_value),
        conditional_on: text(&a.conditional_on),
        conditional_operator: text(&a.conditional_operator),
        conditional_value: value(&a.conditional_value),
        is_frontend_only: a.is_frontend_only.as_ref().map(|f| *f.get_ref()),
    }
}

/// `AlgorithmInputSchema`'s fields, in the order vantage6's own files write them.
#[derive(Serialize)]
struct Algorithm {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    image: String,
    vantage6_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    documentation_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partitioning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    submission_comments: Option<String>,
    functions: Vec<Function>,
}

#[derive(Serialize)]
struct Function {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    standalone: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    databases: Option<Vec<Database>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<Vec<Argument>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ui_visualizations: Option<Vec<Visualization>>,
}

#[derive(Serialize)]
struct Database {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multiple: Option<bool>,
}

#[derive(Serialize)]
struct Argument {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_values: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    has_default_value: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conditional_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conditional_operator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conditional_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_frontend_only: Option<bool>,
}

#[derive(Serialize)]
struct Visualization {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(store: &str) -> (tempfile::TempDir, Manifest) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v6.toml");
        let text = format!(
            "[algorithm]\nname = \"a\"\nwrapper = \"python\"\nvantage6 = \"4.15\"\nimage = \"ghcr.io/o/a\"\nversion = \"1.0.0\"\n{store}"
        );
        std::fs::write(&path, &text).unwrap();
        let manifest = Manifest::load(&path).unwrap();
        (dir, manifest)
    }

    fn published() -> (TaggedImage, Digest) {
        let image = TaggedImage {
            image: crate::oci::reference::ImageName::parse("ghcr.io/o/a").unwrap(),
            tag: crate::oci::reference::Tag::parse("1.0.0").unwrap(),
        };
        (
            image,
            Digest::parse(&format!("sha256:{}", "0f".repeat(32))).unwrap(),
        )
    }

    #[test]
    fn refresh_writes_output_beside_v6_toml_with_the_digest() {
        let (image, digest) = published();
        let (dir, manifest) = project(
            "[store]\noutput = \"meta/algorithm_store.json\"\ncode-url = \"u\"\npartitioning = \"horizontal\"\nfunctions = []\n",
        );
        std::fs::create_dir(dir.path().join("meta")).unwrap();
        let written = refresh_after_publish(&manifest, &image, &digest)
            .unwrap()
            .unwrap();
        assert_eq!(written, dir.path().join("meta/algorithm_store.json"));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
        assert_eq!(json["image"], format!("ghcr.io/o/a:1.0.0@{digest}"));
        assert_eq!(json["functions"], serde_json::json!([]));
    }

    #[test]
    fn a_manifest_list_is_named_by_its_digest_alone_and_an_old_store_is_warned() {
        let (image, digest) = published();
        let (_dir, mut manifest) =
            project("[store]\ncode-url = \"u\"\npartitioning = \"horizontal\"\nfunctions = []\n");
        manifest.build.platforms = crate::oci::platform::Platform::ALL.to_vec();
        let store = super::super::load(&manifest).unwrap().unwrap();
        let export = document(&manifest, &store, &image, Some(&digest));
        let json: serde_json::Value = serde_json::from_str(&export.json).unwrap();
        assert_eq!(json["image"], format!("ghcr.io/o/a@{digest}"));
        // vantage6 4.5 (and 3.7: its minor is above 6, its major is not 4) cannot read one.
        for old in ["4.5", "3.7"] {
            manifest.vantage6 = crate::vantage6::Vantage6Version::parse(old).unwrap();
            let export = document(&manifest, &store, &image, Some(&digest));
            let json: serde_json::Value = serde_json::from_str(&export.json).unwrap();
            assert_eq!(json["image"], "ghcr.io/o/a:1.0.0", "{old}");
            assert!(
                export.notes[0].contains("linux/amd64 image"),
                "{old}: {:?}",
                export.notes
            );
        }
    }

    #[test]
    fn refresh_writes_nothing_without_store_or_output() {
        let (image, digest) = published();
        let (dir, manifest) = project("");
        assert!(
            refresh_after_publish(&manifest, &image, &digest)
                .unwrap()
                .is_none()
        );
        let (_, manifest) =
            project("[store]\ncode-url = \"u\"\npartitioning = \"horizontal\"\nfunctions = []\n");
        assert!(
            refresh_after_publish(&manifest, &image, &digest)
                .unwrap()
                .is_none()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refresh_refuses_a_section_the_store_would_refuse() {
        let (image, digest) = published();
        let (_, manifest) =
            project("[store]\noutput = \"x.json\"\npartitioning = \"horizontal\"\n");
        assert!(matches!(
            refresh_after_publish(&manifest, &image, &digest),
            Err(StoreError::Invalid { .. })
        ));
    }
}
