//! The container token a node gives an algorithm: how the algorithm client and the `@metadata`
//! decorator learn who runs the task, and how a federated run's server knows its callers.

use super::node::NodeTask;

/// The container token: a JWT whose `sub` is the identity the server gives a container (4.x
/// `client_type`, `node_id`, `organization_id`, `collaboration_id`, `task_id`, `image`,
/// `databases`; 5.x also the session, and the databases as dataframes), and in a federated run the container's nonce as `jti`. Unsigned: the
/// `@metadata` decorator and the algorithm client read it without verifying; the federated
/// run's server knows its callers by the nonce.
pub(super) fn container_token(task: &NodeTask<'_>) -> String {
    let header = serde_json::json!({"alg": "none", "typ": "JWT"});
    let mut payload = if task.version.major >= 5 {
        // vantage6-hq 5.0.3 `ContainerToken.post`: the session, and the dataframes grouped by
        // argument position, each by its id (numbered from 1 in the order of the task's).
        let mut groups: Vec<(usize, Vec<serde_json::Value>)> = Vec::new();
        for (index, db) in task.databases.iter().enumerate() {
            let frame =
                serde_json::json!({"label": null, "type": "dataframe", "dataframe_id": index + 1});
            match groups.last_mut() {
                Some((position, frames)) if *position == db.position => frames.push(frame),
                _ => groups.push((db.position, vec![frame])),
            }
        }
        let databases: Vec<Vec<serde_json::Value>> = groups.into_iter().map(|(_, g)| g).collect();
        serde_json::json!({
            "sub": {
                "vantage6_client_type": "container",
                "node_id": task.ids.node,
                "organization_id": task.ids.organization,
                "collaboration_id": task.ids.collaboration,
                "study_id": null,
                "store_id": null,
                "session_id": 1,
                "task_id": task.ids.task,
                "image": task.image,
                "databases": databases,
            },
        })
    } else {
        let databases: Vec<serde_json::Value> = task
            .databases
            .iter()
            .map(|d| serde_json::json!({"label": d.label, "type": d.db_type}))
            .collect();
        serde_json::json!({
            "sub": {
                "client_type": "container",
                "node_id": task.ids.node,
                "organization_id": task.ids.organization,
                "collaboration_id": task.ids.collaboration,
                "task_id": task.ids.task,
                "image": task.image,
                "databases": databases,
            },
        })
    };
    if let Some(proxy) = task.proxy {
        payload["jti"] = proxy.nonce.into();
    }
    format!(
        "{}.{}.",
        base64url(header.to_string().as_bytes()),
        base64url(payload.to_string().as_bytes())
    )
}

/// Unpadded base64url (RFC 4648 section 5), as JWTs use.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut block = [0u8; 3];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = (u32::from(block[0]) << 16) | (u32::from(block[1]) << 8) | u32::from(block[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((bits >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_is_unpadded_and_url_safe() {
        assert_eq!(base64url(br#"{"alg":"none"}"#), "eyJhbGciOiJub25lIn0");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
