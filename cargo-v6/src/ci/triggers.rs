//! Which tags an existing GitHub workflow runs on, read as GitHub reads `on:`: what tells
//! `ci` that another workflow already releases on the same tags.

/// Whether the GitHub workflow `text` runs on a push of `tag` (its `on`, read as GitHub does:
/// `push` alone fires on every tag; `on.push.tags` and `tags-ignore` filter them). A file that
/// is not YAML is not read.
pub(super) fn workflow_fires_on_tag(text: &str, tag: &str) -> bool {
    use yaml_rust2::Yaml;
    let Ok(docs) = yaml_rust2::YamlLoader::load_from_str(text) else {
        return false;
    };
    let Some(on) = docs.first().map(|d| &d["on"]) else {
        return false;
    };
    let strings = |yaml: &Yaml| -> Vec<String> {
        match yaml {
            Yaml::String(s) => vec![s.clone()],
            Yaml::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    // `create` runs whenever a tag (or branch) is created, with no filter.
    let push = match on {
        Yaml::String(_) | Yaml::Array(_) => {
            return strings(on).iter().any(|e| e == "push" || e == "create");
        }
        Yaml::Hash(_) if !on["create"].is_badvalue() => return true,
        Yaml::Hash(_) => &on["push"],
        _ => return false,
    };
    match push {
        // `push:` with no filter: every branch and tag.
        Yaml::Null => true,
        Yaml::Hash(_) => {
            let tags = strings(&push["tags"]);
            let ignored = strings(&push["tags-ignore"]);
            if tags.is_empty() && ignored.is_empty() {
                // No tag filter: a branch filter keeps every tag out; without one (nothing, or
                // only `paths`, which tag pushes do not evaluate) every tag runs it.
                return push["branches"].is_badvalue() && push["branches-ignore"].is_badvalue();
            }
            if !ignored.is_empty() {
                return !ignored.iter().any(|p| github_glob_matches(p, tag));
            }
            filters_accept(&tags, tag)
        }
        _ => false,
    }
}

/// GitHub's rule for a list of filter patterns: the last pattern that matches decides, and a
/// pattern starting with `!` excludes.
fn filters_accept(patterns: &[String], tag: &str) -> bool {
    let mut accepted = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if github_glob_matches(negated, tag) => accepted = false,
            None if github_glob_matches(pattern, tag) => accepted = true,
            _ => {}
        }
    }
    accepted
}

/// A GitHub filter pattern against a whole ref name: `*` any characters but `/`, `**` any
/// characters, `?` the preceding character optionally, `+` it repeated, `[...]` a class, `\`
/// an escape; anything else is itself.
fn github_glob_matches(pattern: &str, text: &str) -> bool {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                re.push_str(".*");
            }
            '*' => re.push_str("[^/]*"),
            '?' | '+' => re.push(c),
            '[' => {
                re.push('[');
                for d in chars.by_ref() {
                    if d == '\\' {
                        re.push_str("\\\\");
                        continue;
                    }
                    re.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    re.push_str(&regex::escape(&next.to_string()));
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).is_ok_and(|re| re.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_globs_read_as_github_documents_them() {
        for (pattern, tag, matches) in [
            ("*.*.*", "1.2.3", true),
            ("*.*.*", "v1.2.3", true),
            ("*", "a/b", false),
            ("**", "a/b", true),
            ("v[0-9]+.[0-9]+*", "v10.2.3", true),
            ("v[0-9]+.[0-9]+*", "vx.2", false),
            ("v1.?", "v1.", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
        ] {
            assert_eq!(
                github_glob_matches(pattern, tag),
                matches,
                "{pattern} {tag}"
            );
        }
        let patterns = ["*".to_string(), "!v*".to_string()];
        assert!(!filters_accept(&patterns, "v1.2.3"));
        assert!(filters_accept(&patterns, "1.2.3"));
    }
}
