//! Workspace inheritance: a member's v6.toml takes, key by key, the defaults that the
//! workspace's root v6.toml gives under `[workspace.algorithm]`, `[workspace.build]`,
//! `[workspace.publish]` and `[workspace.sign]`. The member's own value wins; the two tables
//! (`build.args`, `build.labels`) merge key by key.
//!
//! Plain defaults rather than cargo's `key.workspace = true`: a workspace of algorithms shares
//! almost everything (registry, vantage6 version, tags, signing key), and a member should not
//! have to repeat a line per key to say so.
//!
//! The merge happens on toml's spanned document, before serde sees it, so that every check of
//! [`super::Manifest`] runs once, on the merged manifest. An inherited value keeps its place
//! in the root's file: its spans are moved past the end of the member's text, and [`Origin`]
//! maps them back, so an error in an inherited value points at the root's v6.toml and line.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use crate::diagnostic::{Location, display};

/// The keys a member inherits, by table.
pub const INHERITABLE: &[(&str, &[&str])] = &[
    (
        "algorithm",
        &["wrapper", "vantage6", "image", "license", "tags"],
    ),
    (
        "build",
        &[
            "base",
            "args",
            "labels",
            "network",
            "platform",
            "platforms",
            "templates",
        ],
    ),
    (
        "publish",
        &[
            "release-tag-prefix",
            "insecure",
            "stall-timeout",
            "version-from-tag",
        ],
    ),
    ("sign", &["key", "format"]),
];

/// The root v6.toml of a workspace, whose `[workspace.*]` tables members inherit.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The root manifest's path, as the user would type it.
    pub path: PathBuf,
    /// Its directory: inherited paths (`build.templates`, `sign.key`) are relative to it.
    pub dir: PathBuf,
    /// Its text.
    pub source: String,
}

impl Defaults {
    /// The value the workspace gives `table.key` (`[workspace.TABLE] KEY`), as TOML text.
    pub fn value(&self, table: &str, key: &str) -> Option<String> {
        let document: toml::Table = toml::from_str(&self.source).ok()?;
        let value = document.get("workspace")?.get(table)?.get(key)?;
        Some(match value {
            toml::Value::String(text) => text.clone(),
            other => other.to_string(),
        })
    }
}

/// Where a span of the merged document was written: the member's file, or (past `offset`)
/// the workspace root's.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    member: &'a Path,
    member_source: &'a str,
    member_dir: &'a Path,
    root: Option<&'a Defaults>,
}

impl<'a> Origin<'a> {
    /// Spans of a standalone manifest, or of a member inheriting from `root`.
    pub fn new(member: &'a Path, member_source: &'a str, member_dir: &'a Path) -> Self {
        Origin {
            member,
            member_source,
            member_dir,
            root: None,
        }
    }

    /// The same, inheriting from `root`.
    pub fn inheriting(self, root: Option<&'a Defaults>) -> Self {
        Origin { root, ..self }
    }

    /// The member's manifest path.
    pub fn member_path(&self) -> &'a Path {
        self.member
    }

    /// The member's text.
    pub fn member_source(&self) -> &'a str {
        self.member_source
    }

    /// The member's directory.
    pub fn member_dir(&self) -> &'a Path {
        self.member_dir
    }

    /// Where inherited spans start: past the member's text.
    pub fn offset(&self) -> usize {
        self.member_source.len() + 1
    }

    fn inherited(&self, span: &Range<usize>) -> Option<&'a Defaults> {
        self.root.filter(|_| span.start >= self.offset())
    }

    /// The file and place `span` points at.
    pub fn locate(&self, span: Range<usize>) -> Location {
        match self.inherited(&span) {
            Some(root) => {
                let offset = self.offset();
                Location::new(
                    display(&root.path),
                    root.source.clone(),
                    span.start - offset..span.end.saturating_sub(offset),
                )
            }
            None => Location::new(display(self.member), self.member_source, span),
        }
    }

    /// The directory a path written at `span` is relative to.
    pub fn dir(&self, span: &Range<usize>) -> &'a Path {
        match self.inherited(span) {
            Some(root) => &root.dir,
            None => self.member_dir,
        }
    }

    /// Whether the value at `span` came from the workspace.
    pub fn is_inherited(&self, span: &Range<usize>) -> bool {
        self.inherited(span).is_some()
    }
}

/// Adds to `member` the keys of `workspace` (the root's `[workspace]` table) that it does not
/// set itself, with spans moved by `offset`.
pub fn merge<'i>(member: &mut DeTable<'i>, workspace: &DeTable<'i>, offset: usize) {
    for (section, keys) in INHERITABLE {
        let Some(defaults) = workspace.get(*section).and_then(|v| v.get_ref().as_table()) else {
            continue;
        };
        let target = member
            .entry(Spanned::new(0..0, (*section).into()))
            .or_insert_with(|| Spanned::new(0..0, DeValue::Table(DeTable::new())));
        let DeValue::Table(target) = target.get_mut() else {
            // `build = 1`: serde reports the wrong type at the member's value.
            continue;
        };
        for (key, value) in defaults.iter() {
            if !keys.contains(&key.get_ref().as_ref()) {
                continue;
            }
            match target.get_mut(key.get_ref().as_ref()) {
                None => {
                    target.insert(shift_key(key, offset), shift(value.clone(), offset));
                }
                // build.args and build.labels: the member's keys win, the others are added.
                Some(own) => {
                    if let (DeValue::Table(own), DeValue::Table(inherited)) =
                        (own.get_mut(), value.get_ref())
                    {
                        for (k, v) in inherited.iter() {
                            if own.get(k.get_ref().as_ref()).is_none() {
                                own.insert(shift_key(k, offset), shift(v.clone(), offset));
                            }
                        }
                    }
                }
            }
        }
    }
}

fn shift_key<'i>(
    key: &Spanned<toml::de::DeString<'i>>,
    by: usize,
) -> Spanned<toml::de::DeString<'i>> {
    let span = key.span();
    Spanned::new(span.start + by..span.end + by, key.get_ref().clone())
}

fn shift(value: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = value.span();
    let inner = match value.into_inner() {
        DeValue::Array(items) => {
            let mut shifted = DeArray::new();
            for item in items.iter() {
                shifted.push(shift(item.clone(), by));
            }
            DeValue::Array(shifted)
        }
        DeValue::Table(table) => {
            let mut shifted = DeTable::new();
            for (k, v) in table {
                shifted.insert(shift_key(&k, by), shift(v, by));
            }
            DeValue::Table(shifted)
        }
        scalar => scalar,
    };
    Spanned::new(span.start + by..span.end + by, inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `member_text` with `root_text`'s `[workspace]` merged in, and the offset of the root's
    /// spans.
    fn merged<'a>(member_text: &'a str, root_text: &'a str) -> (DeTable<'a>, usize) {
        let mut member = DeTable::parse(member_text).unwrap().into_inner();
        let root = DeTable::parse(root_text).unwrap().into_inner();
        let workspace = root.get("workspace").unwrap().get_ref().as_table().unwrap();
        let offset = member_text.len() + 1;
        merge(&mut member, workspace, offset);
        (member, offset)
    }

    /// The value at `path` (table keys), if there is one.
    fn at<'t, 'a>(table: &'t DeTable<'a>, path: &[&str]) -> Option<&'t Spanned<DeValue<'a>>> {
        let (first, rest) = path.split_first()?;
        rest.iter()
            .try_fold(table.get(*first)?, |value, key| value.get_ref().get(*key))
    }

    fn text_at<'t>(table: &'t DeTable<'_>, path: &[&str]) -> Option<&'t str> {
        at(table, path)?.get_ref().as_str()
    }

    #[test]
    fn the_members_value_wins_and_missing_keys_are_inherited() {
        let member_text = "[algorithm]\nname = \"a\"\nvantage6 = \"4.14\"\n";
        let root_text = "[workspace.algorithm]\nvantage6 = \"4.15\"\nwrapper = \"python\"\n[workspace.build.labels]\nx = \"1\"\n";
        let (member, offset) = merged(member_text, root_text);
        assert_eq!(text_at(&member, &["algorithm", "vantage6"]), Some("4.14"));
        assert_eq!(text_at(&member, &["algorithm", "wrapper"]), Some("python"));
        // The inherited span, moved back, is the root's `"python"`.
        let span = at(&member, &["algorithm", "wrapper"]).unwrap().span();
        assert_eq!(
            &root_text[span.start - offset..span.end - offset],
            "\"python\""
        );
        assert_eq!(text_at(&member, &["build", "labels", "x"]), Some("1"));
    }

    #[test]
    fn tables_merge_key_by_key() {
        let (member, _) = merged(
            "[algorithm]\n[build.args]\nA = \"own\"\n",
            "[workspace.build.args]\nA = \"root\"\nB = \"root\"\n",
        );
        assert_eq!(text_at(&member, &["build", "args", "A"]), Some("own"));
        assert_eq!(text_at(&member, &["build", "args", "B"]), Some("root"));
    }

    #[test]
    fn keys_that_belong_to_one_member_are_not_inherited() {
        let (member, _) = merged(
            "[algorithm]\n",
            "[workspace.algorithm]\nname = \"x\"\nversion = \"1.0.0\"\n",
        );
        assert!(at(&member, &["algorithm", "name"]).is_none());
        assert!(at(&member, &["algorithm", "version"]).is_none());
    }
}
