//! Helpers shared by the unit tests beside the code.

use std::collections::HashMap;

/// An environment with `vars`, nothing else: for the code that reads variables through a
/// closure (engine addresses, credentials, the CI's release tag).
pub fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}
