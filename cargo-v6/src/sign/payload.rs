//! What is signed: cosign's simple-signing JSON (the `.sig` layout), and for the bundle layout
//! an in-toto statement of predicate type `https://sigstore.dev/cosign/sign/v1` in a DSSE
//! envelope, as cosign 3 writes them. Pure data: no I/O.

use serde::{Deserialize, Serialize};

use crate::oci::reference::{Digest, ImageName};

/// `critical.type` of a cosign container image signature.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// The in-toto statement type cosign 3 signs.
pub const IN_TOTO_STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The predicate type of a cosign 3 image signature.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A simple-signing payload, in cosign's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleSigning {
    /// What the signature is about.
    pub critical: Critical,
    /// Free-form claims; cosign writes `null` when there are none.
    pub optional: Option<serde_json::Value>,
}

/// The claims a verifier checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    /// The repository signed.
    pub identity: Identity,
    /// The manifest digest signed.
    pub image: Image,
    /// [`SIMPLE_SIGNING_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The repository (`ghcr.io/org/algo`), as cosign writes it.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<hex>` of the signed manifest.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The simple-signing payload for `image@digest`, as bytes to sign and upload.
pub fn simple_signing(image: &ImageName, digest: &Digest) -> Vec<u8> {
    let payload = SimpleSigning {
        critical: Critical {
            identity: Identity {
                docker_reference: image.to_string(),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: SIMPLE_SIGNING_TYPE.to_owned(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).expect("a struct of strings serializes")
}

/// What a signed payload claims, whichever layout carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The repository named, if any.
    pub reference: Option<String>,
    /// The digest named.
    pub digest: String,
}

/// Reads a simple-signing payload. The error says what is wrong with it.
pub fn read_simple_signing(bytes: &[u8]) -> Result<Claim, String> {
    let payload: SimpleSigning = serde_json::from_slice(bytes)
        .map_err(|e| format!("the payload is not cosign simple-signing JSON: {e}"))?;
    if payload.critical.kind != SIMPLE_SIGNING_TYPE {
        return Err(format!(
            "the payload's type is `{}`, not `{SIMPLE_SIGNING_TYPE}`",
            payload.critical.kind
        ));
    }
    Ok(Claim {
        reference: Some(payload.critical.identity.docker_reference),
        digest: payload.critical.image.docker_manifest_digest,
    })
}

#[derive(Serialize, Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    digest: std::collections::BTreeMap<String, String>,
}

/// The in-toto statement cosign 3 signs for `image@digest`.
pub fn statement(image: &ImageName, digest: &Digest) -> Vec<u8> {
    let (algorithm, hex) = digest
        .as_str()
        .split_once(':')
        .expect("a checked digest has an algorithm");
    let statement = Statement {
        kind: IN_TOTO_STATEMENT_TYPE.to_owned(),
        subject: vec![Subject {
            name: Some(image.to_string()),
            digest: [(algorithm.to_owned(), hex.to_owned())].into(),
        }],
        predicate_type: COSIGN_SIGN_PREDICATE.to_owned(),
        predicate: serde_json::json!({}),
    };
    serde_json::to_vec(&statement).expect("a struct of strings serializes")
}

/// Reads a statement: the first subject's digest (cosign signs one subject) and its name.
pub fn read_statement(bytes: &[u8]) -> Result<Claim, String> {
    let statement: Statement = serde_json::from_slice(bytes)
        .map_err(|e| format!("the DSSE payload is not an in-toto statement: {e}"))?;
    if statement.kind != IN_TOTO_STATEMENT_TYPE {
        return Err(format!("the statement's type is `{}`", statement.kind));
    }
    if statement.predicate_type != COSIGN_SIGN_PREDICATE {
        return Err(format!(
            "the statement's predicate is `{}`, not an image signature (`{COSIGN_SIGN_PREDICATE}`)",
            statement.predicate_type
        ));
    }
    let subject = statement
        .subject
        .into_iter()
        .next()
        .ok_or("the statement has no subject")?;
    let (algorithm, hex) = subject
        .digest
        .into_iter()
        .next()
        .ok_or("the statement's subject has no digest")?;
    Ok(Claim {
        reference: subject.name,
        digest: format!("{algorithm}:{hex}"),
    })
}

/// DSSE's pre-authentication encoding: what the signature of an envelope covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageName {
        ImageName::parse("ghcr.io/org/algo").unwrap()
    }

    fn digest() -> Digest {
        Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap()
    }

    #[test]
    fn simple_signing_is_cosigns_json() {
        let bytes = simple_signing(&image(), &digest());
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"ghcr.io/org/algo"}},"image":{{"docker-manifest-digest":"sha256:{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
                "a".repeat(64)
            )
        );
        let claim = read_simple_signing(&bytes).unwrap();
        assert_eq!(claim.digest, digest().to_string());
        assert_eq!(claim.reference.as_deref(), Some("ghcr.io/org/algo"));
        assert!(read_simple_signing(b"{}").is_err());
    }

    #[test]
    fn statements_read_back() {
        let bytes = statement(&image(), &digest());
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["predicateType"], COSIGN_SIGN_PREDICATE);
        assert_eq!(json["subject"][0]["digest"]["sha256"], "a".repeat(64));
        assert_eq!(read_statement(&bytes).unwrap().digest, digest().to_string());
    }

    #[test]
    fn pae_follows_the_dsse_spec() {
        // The example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }
}
