//! Judging the signatures found for an image against a public key: pure, so that every
//! reason for a refusal is tested without a registry.
//!
//! A signature counts only when all of these hold: the key verifies the signature over the
//! exact bytes stored (the simple-signing payload, or the DSSE pre-authentication encoding of
//! a bundle's statement); the payload is a cosign image signature; it names exactly the digest
//! asked about; and the repository it names (when it names one) is the image's.

use crate::oci::reference::{Digest, ImageName, ImageRef};

use super::keys::{KeyId, PublicKey};
use super::layouts::Layout;
use super::payload::Claim;

/// One signature as read from the registry.
#[derive(Debug, Clone)]
pub struct Found {
    /// Where it is stored.
    pub layout: Layout,
    /// Where exactly, for messages (`IMAGE:sha256-….sig`, `IMAGE@sha256:…`).
    pub location: String,
    /// The bytes the signature covers.
    pub signed: Vec<u8>,
    /// The signature, decoded; `None` when there is none or it is not base64.
    pub signature: Option<Vec<u8>>,
    /// What the payload claims, or why it claims nothing usable.
    pub claim: Result<Claim, String>,
    /// The key the writer says it used, when it says.
    pub key: Option<KeyId>,
}

/// What one signature is, judged against a key, image and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Valid: this key, this digest, this repository.
    Valid,
    /// The key verifies it, but it is for another digest.
    OtherDigest(String),
    /// The key verifies it, but it names another repository.
    OtherReference(String),
    /// It says it was made with this key, yet the key does not verify it: the payload or the
    /// signature was changed after signing.
    Tampered,
    /// Made with another key (named when the writer said which).
    OtherKey(Option<KeyId>),
    /// Not a usable signature (no signature, not base64, not a cosign payload).
    Malformed(String),
}

/// Judges `found` against `key` for `image@digest`.
pub fn judge(found: &Found, key: &PublicKey, image: &ImageName, digest: &Digest) -> Judgement {
    let Some(signature) = &found.signature else {
        return Judgement::Malformed("it has no readable signature".to_owned());
    };
    if !key.verifies(signature, &found.signed) {
        return match &found.key {
            Some(id) if id == key.id() => Judgement::Tampered,
            other => Judgement::OtherKey(other.clone()),
        };
    }
    let claim = match &found.claim {
        Ok(claim) => claim,
        Err(reason) => return Judgement::Malformed(reason.clone()),
    };
    if claim.digest != digest.as_str() {
        return Judgement::OtherDigest(claim.digest.clone());
    }
    if let Some(reference) = &claim.reference
        && !names(reference, image)
    {
        return Judgement::OtherReference(reference.clone());
    }
    Judgement::Valid
}

/// Whether a payload's `docker-reference` (a repository, possibly with a tag or digest, as
/// cosign has written it over the years) is `image`, both normalized.
fn names(reference: &str, image: &ImageName) -> bool {
    ImageRef::parse(reference).is_ok_and(|r| r.name == *image)
}

/// Why an image is not verified. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No signature in either layout.
    #[error(
        "{image}@{digest} has no signature (looked for the `{sig_tag}` tag and for bundle referrers)"
    )]
    NoSignature {
        /// The image.
        image: String,
        /// The digest.
        digest: String,
        /// The `.sig` tag looked for.
        sig_tag: String,
    },
    /// A signature by this key exists, but for another digest.
    #[error(
        "digest mismatch: the signature at {location} by this key is for {signed}, not {digest}"
    )]
    DigestMismatch {
        /// Where.
        location: String,
        /// The digest it signs.
        signed: String,
        /// The digest asked about.
        digest: String,
    },
    /// A signature by this key for this digest names another repository.
    #[error(
        "reference mismatch: the signature at {location} by this key names {signed}, not {image}"
    )]
    ReferenceMismatch {
        /// Where.
        location: String,
        /// The repository it names.
        signed: String,
        /// The image asked about.
        image: String,
    },
    /// The signature says it is this key's but does not verify: changed after signing.
    #[error(
        "tampered payload: the signature at {location} was made with this key ({key}), but it does not verify over the payload stored there: the payload or signature was changed after signing"
    )]
    Tampered {
        /// Where.
        location: String,
        /// The key.
        key: String,
    },
    /// Every signature was made with another key.
    #[error("wrong key: {detail}")]
    WrongKey {
        /// Which keys, as far as known.
        detail: String,
    },
    /// Signatures exist but none is usable.
    #[error("no valid signature: {detail}")]
    Malformed {
        /// What is wrong with them.
        detail: String,
    },
}

/// A verified image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The digest verified.
    pub digest: Digest,
    /// The layouts in which a valid signature was found.
    pub layouts: Vec<Layout>,
    /// How many valid signatures there are.
    pub count: usize,
}

/// The verdict over every signature found: verified when at least one is valid, else the most
/// telling reason (a signature by this key for something else beats one that is tampered,
/// which beats other keys).
pub fn verdict(
    found: &[Found],
    key: &PublicKey,
    image: &ImageName,
    digest: &Digest,
    sig_tag: &str,
) -> Result<Verified, Refusal> {
    let judged: Vec<(&Found, Judgement)> = found
        .iter()
        .map(|f| (f, judge(f, key, image, digest)))
        .collect();
    let mut layouts: Vec<Layout> = judged
        .iter()
        .filter(|(_, j)| *j == Judgement::Valid)
        .map(|(f, _)| f.layout)
        .collect();
    let count = layouts.len();
    if count > 0 {
        layouts.sort();
        layouts.dedup();
        return Ok(Verified {
            digest: digest.clone(),
            layouts,
            count,
        });
    }
    let first = |pick: fn(&Judgement) -> bool| judged.iter().find(|(_, j)| pick(j));
    if let Some((f, Judgement::OtherDigest(signed))) =
        first(|j| matches!(j, Judgement::OtherDigest(_)))
    {
        return Err(Refusal::DigestMismatch {
            location: f.location.clone(),
            signed: signed.clone(),
            digest: digest.to_string(),
        });
    }
    if let Some((f, Judgement::OtherReference(signed))) =
        first(|j| matches!(j, Judgement::OtherReference(_)))
    {
        return Err(Refusal::ReferenceMismatch {
            location: f.location.clone(),
            signed: signed.clone(),
            image: image.to_string(),
        });
    }
    if let Some((f, _)) = first(|j| *j == Judgement::Tampered) {
        return Err(Refusal::Tampered {
            location: f.location.clone(),
            key: key.id().to_string(),
        });
    }
    let others: Vec<&Option<KeyId>> = judged
        .iter()
        .filter_map(|(_, j)| match j {
            Judgement::OtherKey(id) => Some(id),
            _ => None,
        })
        .collect();
    if !others.is_empty() {
        let mut named: Vec<String> = others
            .iter()
            .filter_map(|id| id.as_ref())
            .map(ToString::to_string)
            .collect();
        named.sort();
        named.dedup();
        let unnamed = others.iter().filter(|id| id.is_none()).count();
        let mut parts = Vec::new();
        if !named.is_empty() {
            let which = plural(named.len(), "another key", "other keys");
            parts.push(format!("signed with {which} ({})", named.join(", ")));
        }
        if unnamed > 0 {
            parts.push(format!(
                "{} that this key does not verify (made with another key, or changed after signing)",
                plural(unnamed, "a signature", &format!("{unnamed} signatures"))
            ));
        }
        return Err(Refusal::WrongKey {
            detail: format!("{}; the key given is {}", parts.join("; and "), key.id()),
        });
    }
    if let Some((f, Judgement::Malformed(reason))) = first(|j| matches!(j, Judgement::Malformed(_)))
    {
        return Err(Refusal::Malformed {
            detail: format!("{}: {reason}", f.location),
        });
    }
    Err(Refusal::NoSignature {
        image: image.to_string(),
        digest: digest.to_string(),
        sig_tag: sig_tag.to_owned(),
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        one.to_owned()
    } else {
        many.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::keys::{NewKeys, Password, SigningKey};
    use crate::sign::payload;

    fn image() -> ImageName {
        ImageName::parse("127.0.0.1:5550/org/algo").unwrap()
    }

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    /// A key pair, through the files cosign's format uses.
    fn key() -> SigningKey {
        let dir = tempfile::tempdir().unwrap();
        let password = Password::new("p");
        let keys = NewKeys::generate(&password).unwrap();
        let (private, _) = crate::sign::keys::write_new(dir.path(), &keys).unwrap();
        SigningKey::load(&private, &password).unwrap()
    }

    fn signed(key: &SigningKey, image: &ImageName, d: &Digest, hint: bool) -> Found {
        let bytes = payload::simple_signing(image, d);
        Found {
            layout: Layout::Sig,
            location: "here".into(),
            signature: Some(key.sign(&bytes).unwrap()),
            claim: payload::read_simple_signing(&bytes),
            signed: bytes,
            key: hint.then(|| key.public().id().clone()),
        }
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let key = key();
        let other = self::key();
        let public = key.public();
        let (image, d) = (image(), digest('a'));
        let sig_tag = "sha256-a.sig";

        let good = signed(&key, &image, &d, true);
        assert_eq!(judge(&good, public, &image, &d), Judgement::Valid);
        let verified = verdict(std::slice::from_ref(&good), public, &image, &d, sig_tag).unwrap();
        assert_eq!(verified.layouts, [Layout::Sig]);

        assert!(matches!(
            verdict(&[], public, &image, &d, sig_tag),
            Err(Refusal::NoSignature { .. })
        ));

        let by_other = signed(&other, &image, &d, true);
        let err =
            verdict(std::slice::from_ref(&by_other), public, &image, &d, sig_tag).unwrap_err();
        assert!(matches!(err, Refusal::WrongKey { .. }), "{err}");
        assert!(
            err.to_string().contains(&other.public().id().to_string()),
            "{err}"
        );
        let unnamed = signed(&other, &image, &d, false);
        let err = verdict(&[unnamed], public, &image, &d, sig_tag).unwrap_err();
        assert!(
            err.to_string()
                .contains("another key, or changed after signing"),
            "{err}"
        );

        let elsewhere = signed(&key, &image, &digest('b'), true);
        let err = verdict(&[by_other, elsewhere], public, &image, &d, sig_tag).unwrap_err();
        assert!(matches!(err, Refusal::DigestMismatch { .. }), "{err}");

        let mut tampered = good.clone();
        tampered.signed = payload::simple_signing(&image, &digest('c'));
        tampered.claim = payload::read_simple_signing(&tampered.signed);
        let err = verdict(&[tampered], public, &image, &d, sig_tag).unwrap_err();
        assert!(matches!(err, Refusal::Tampered { .. }), "{err}");

        let moved = signed(&key, &ImageName::parse("ghcr.io/x/y").unwrap(), &d, true);
        let err = verdict(&[moved], public, &image, &d, sig_tag).unwrap_err();
        assert!(matches!(err, Refusal::ReferenceMismatch { .. }), "{err}");

        // One valid signature among bad ones is enough.
        let mixed = [signed(&other, &image, &d, true), good];
        assert_eq!(
            verdict(&mixed, public, &image, &d, sig_tag).unwrap().count,
            1
        );
    }

    #[test]
    fn references_are_compared_normalized() {
        let image = ImageName::parse("docker.io/library/algo").unwrap();
        assert!(names("algo", &image));
        assert!(names("index.docker.io/library/algo:1.0", &image));
        assert!(!names("ghcr.io/library/algo", &image));
        assert!(!names("Not A Reference", &image));
    }
}
