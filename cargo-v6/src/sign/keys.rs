//! Signing keys in cosign's formats: `cosign.key`, an ECDSA P-256 PKCS#8 key encrypted with a
//! password (scrypt, then NaCl secretbox, PEM label `ENCRYPTED SIGSTORE PRIVATE KEY`, or
//! `ENCRYPTED COSIGN PRIVATE KEY` as cosign 1.x wrote it), and `cosign.pub`, the SubjectPublicKeyInfo
//! (PEM label `PUBLIC KEY`). The crypto is the sigstore crate's; this module reads and writes
//! the files and keeps the secrets out of every message.
//!
//! Invariants:
//! - The private key and the password are in no error text and no `Debug` output; both are
//!   zeroed when dropped.
//! - Key files are never overwritten: [`write_new`] refuses when either file exists.
//! - The password comes from `COSIGN_PASSWORD` (as cosign reads it, an empty value included),
//!   else from a prompt when stdin is a terminal; otherwise loading fails with what to do.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::crypto::signing_key::{
    COSIGN_PRIVATE_KEY_PEM_LABEL, PUBLIC_KEY_PEM_LABEL, SIGSTORE_PRIVATE_KEY_PEM_LABEL,
    SigStoreSigner, kdf,
};
use sigstore::crypto::{CosignVerificationKey, Signature};
use sigstore::errors::SigstoreError;
use zeroize::Zeroizing;

/// The file name cosign gives the private key.
pub const PRIVATE_KEY_FILE: &str = "cosign.key";

/// The file name cosign gives the public key.
pub const PUBLIC_KEY_FILE: &str = "cosign.pub";

/// The variable cosign reads the key's password from.
pub const PASSWORD_VAR: &str = "COSIGN_PASSWORD";

/// Key files are small; anything larger is not one.
const KEY_FILE_MAX: u64 = 64 * 1024;

/// A key could not be made, read, decrypted or written. Holds no secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read.
    #[error("cannot read key `{path}`: {reason}")]
    Read {
        /// The file, as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not a key of the kind needed.
    #[error("`{path}` is not {expected}: {reason}")]
    NotAKey {
        /// The file, as given.
        path: String,
        /// What it should have been (`a cosign private key`, `a public key`).
        expected: &'static str,
        /// What it is instead.
        reason: String,
    },
    /// The password does not decrypt the private key.
    #[error("wrong password for the private key `{path}`")]
    WrongPassword {
        /// The file, as given.
        path: String,
    },
    /// No password was given and none can be asked for.
    #[error(
        "the private key needs a password: set {PASSWORD_VAR}, or run on a terminal to be asked for it"
    )]
    NoPassword,
    /// Asking for the password failed, or the two entries differ.
    #[error("cannot read the password: {reason}")]
    Prompt {
        /// Why.
        reason: String,
    },
    /// `key generate` would overwrite a key.
    #[error("`{path}` already exists; cargo v6 never overwrites a key")]
    Exists {
        /// The existing file.
        path: String,
    },
    /// A key file cannot be written.
    #[error("cannot write `{path}`: {reason}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The crypto library failed to make or use a key.
    #[error("{what}: {reason}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// The library's message (it never contains key material).
        reason: String,
    },
}

impl KeyError {
    /// Whether the user's input is wrong (a file, a password), rather than the world.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            KeyError::Read { .. }
                | KeyError::NotAKey { .. }
                | KeyError::WrongPassword { .. }
                | KeyError::NoPassword
                | KeyError::Prompt { .. }
        )
    }
}

/// A private key's password. Zeroed when dropped; never shown.
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// A password from bytes (tests, and callers with their own source).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Password(Zeroizing::new(bytes.into()))
    }

    /// `COSIGN_PASSWORD` if set (an empty value is an empty password, as in cosign), else a
    /// prompt on the terminal; asked twice when `confirm` (a new key). Fails when neither is
    /// possible: stdin is not a terminal and the variable is unset.
    pub fn obtain(confirm: bool) -> Result<Password, KeyError> {
        if let Some(value) = std::env::var_os(PASSWORD_VAR) {
            return Ok(Password::new(os_bytes(value)));
        }
        if !std::io::stdin().is_terminal() {
            return Err(KeyError::NoPassword);
        }
        let prompt = |text: &str| {
            rpassword::prompt_password(text)
                .map(|p| Zeroizing::new(p.into_bytes()))
                .map_err(|e| KeyError::Prompt {
                    reason: e.to_string(),
                })
        };
        let first = prompt("Enter password for private key: ")?;
        if confirm {
            let second = prompt("Enter password for private key again: ")?;
            if *first != *second {
                return Err(KeyError::Prompt {
                    reason: "the two passwords differ".to_owned(),
                });
            }
        }
        Ok(Password(first))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(unix)]
fn os_bytes(value: std::ffi::OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    value.into_vec()
}

#[cfg(not(unix))]
fn os_bytes(value: std::ffi::OsString) -> Vec<u8> {
    value.to_string_lossy().into_owned().into_bytes()
}

/// What identifies a public key in messages and in the signatures cargo v6 writes: the sha256
/// of its SubjectPublicKeyInfo (DER).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyId([u8; 32]);

impl KeyId {
    fn of(spki_der: &[u8]) -> Self {
        KeyId(Sha256::digest(spki_der).into())
    }

    /// `sha256:<hex>`, the form written in the `.sig` layout's annotation.
    pub fn full(&self) -> String {
        format!("sha256:{}", hex::encode(self.0))
    }

    /// The base64 of the digest: the `hint` of a Sigstore bundle's public key, as sigstore-go
    /// writes it.
    pub fn hint(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Reads either form back ([`KeyId::full`] or [`KeyId::hint`]).
    pub fn parse(text: &str) -> Option<KeyId> {
        use base64::Engine as _;
        let bytes = match text.strip_prefix("sha256:") {
            Some(hex_text) => hex::decode(hex_text).ok()?,
            None => base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()?,
        };
        Some(KeyId(bytes.try_into().ok()?))
    }
}

impl std::fmt::Display for KeyId {
    /// Short, for messages: `sha256:` and 12 hex digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", &hex::encode(self.0)[..12])
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A public key that verifies signatures (`cosign.pub`).
#[derive(Clone)]
pub struct PublicKey {
    key: CosignVerificationKey,
    id: KeyId,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` file (cosign.pub).
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let shown = crate::diagnostic::display(path);
        let text = read_key_file(path)?;
        let not_a_key = |reason: String| KeyError::NotAKey {
            path: shown.clone(),
            expected: "a public key",
            reason,
        };
        let pem = pem::parse(text.as_bytes()).map_err(|e| not_a_key(format!("no PEM: {e}")))?;
        if pem.tag() != PUBLIC_KEY_PEM_LABEL {
            let hint = if pem.tag().contains("PRIVATE") {
                " (this is a private key: verify takes the public key, cosign.pub)"
            } else {
                ""
            };
            return Err(not_a_key(format!("its PEM label is `{}`{hint}", pem.tag())));
        }
        PublicKey::from_der(pem.contents()).map_err(|e| not_a_key(e.to_string()))
    }

    /// A public key from its SubjectPublicKeyInfo (DER).
    pub fn from_der(spki_der: &[u8]) -> Result<PublicKey, SigstoreError> {
        Ok(PublicKey {
            key: CosignVerificationKey::try_from_der(spki_der)?,
            id: KeyId::of(spki_der),
        })
    }

    /// Its identifier.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Whether `signature` (DER, as cosign writes ECDSA signatures) is this key's over
    /// `message`.
    pub fn verifies(&self, signature: &[u8], message: &[u8]) -> bool {
        self.key
            .verify_signature(Signature::Raw(signature), message)
            .is_ok()
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

/// A decrypted private key that signs: ECDSA P-256 with SHA-256, DER signatures.
pub struct SigningKey {
    signer: SigStoreSigner,
    public: PublicKey,
}

impl SigningKey {
    /// Reads and decrypts a cosign private key (`cosign.key`, as cargo v6 or cosign wrote it).
    pub fn load(path: &Path, password: &Password) -> Result<SigningKey, KeyError> {
        let shown = crate::diagnostic::display(path);
        let text = Zeroizing::new(read_key_file(path)?);
        let not_a_key = |reason: String| KeyError::NotAKey {
            path: shown.clone(),
            expected: "a cosign private key",
            reason,
        };
        let pem = pem::parse(text.as_bytes()).map_err(|e| not_a_key(format!("no PEM: {e}")))?;
        if pem.tag() != SIGSTORE_PRIVATE_KEY_PEM_LABEL && pem.tag() != COSIGN_PRIVATE_KEY_PEM_LABEL
        {
            let hint = if pem.tag() == PUBLIC_KEY_PEM_LABEL {
                " (this is a public key: signing takes the private key, cosign.key)"
            } else {
                ""
            };
            return Err(not_a_key(format!(
                "its PEM label is `{}`, not `{SIGSTORE_PRIVATE_KEY_PEM_LABEL}`{hint}",
                pem.tag()
            )));
        }
        let der = match kdf::decrypt(pem.contents(), password.bytes()) {
            Ok(der) => Zeroizing::new(der),
            // The secretbox refused to open: the key derived from the password is not the
            // one the file was sealed with (the library names the failure "encrypt").
            Err(SigstoreError::PrivateKeyEncryptError(_)) => {
                return Err(KeyError::WrongPassword { path: shown });
            }
            Err(e) => return Err(not_a_key(format!("cannot decrypt it: {e}"))),
        };
        let keys = ECDSAKeys::from_der(&der)
            .map_err(|e| not_a_key(format!("the decrypted key is not ECDSA: {e}")))?;
        SigningKey::from_keys(keys).map_err(|e| match e {
            KeyError::Crypto { reason, .. } => not_a_key(reason),
            other => other,
        })
    }

    fn from_keys(keys: ECDSAKeys) -> Result<SigningKey, KeyError> {
        if !matches!(keys, ECDSAKeys::P256(_)) {
            return Err(KeyError::Crypto {
                what: "unsupported key",
                reason: format!("{keys} key; cosign keys for images are ECDSA P-256"),
            });
        }
        let crypto = |what: &'static str| {
            move |e: SigstoreError| KeyError::Crypto {
                what,
                reason: e.to_string(),
            }
        };
        let der = keys
            .as_inner()
            .public_key_to_der()
            .map_err(crypto("cannot derive the public key"))?;
        let public = PublicKey::from_der(&der).map_err(crypto("cannot read the public key"))?;
        let signer = keys
            .to_sigstore_signer()
            .map_err(crypto("cannot make a signer"))?;
        Ok(SigningKey { signer, public })
    }

    /// Signs `message`: ECDSA P-256 over its SHA-256, DER-encoded.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.signer.sign(message).map_err(|e| KeyError::Crypto {
            what: "cannot sign",
            reason: e.to_string(),
        })
    }

    /// The matching public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public {})", self.public.id)
    }
}

/// A new key pair in cosign's file formats.
pub struct NewKeys {
    private_pem: Zeroizing<String>,
    public_pem: String,
    /// The public key's identifier.
    pub id: KeyId,
}

impl NewKeys {
    /// A fresh ECDSA P-256 key pair, the private key encrypted with `password` exactly as
    /// cosign's `generate-key-pair` does.
    pub fn generate(password: &Password) -> Result<NewKeys, KeyError> {
        let crypto = |what: &'static str| {
            move |e: SigstoreError| KeyError::Crypto {
                what,
                reason: e.to_string(),
            }
        };
        let keys = ECDSAKeys::new(EllipticCurve::P256).map_err(crypto("cannot make a key"))?;
        let pair = keys.as_inner();
        let private_pem = pair
            .private_key_to_encrypted_pem(password.bytes())
            .map_err(crypto("cannot encrypt the private key"))?;
        let public_pem = pair
            .public_key_to_pem()
            .map_err(crypto("cannot encode the public key"))?;
        let der = pair
            .public_key_to_der()
            .map_err(crypto("cannot encode the public key"))?;
        Ok(NewKeys {
            private_pem,
            public_pem,
            id: KeyId::of(&der),
        })
    }

    /// The public key, PEM.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }
}

impl std::fmt::Debug for NewKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewKeys({})", self.id)
    }
}

/// Writes `keys` as `cosign.key` (mode 0600) and `cosign.pub` in `dir`, refusing if either
/// exists. Returns the two paths.
pub fn write_new(dir: &Path, keys: &NewKeys) -> Result<(PathBuf, PathBuf), KeyError> {
    let private = dir.join(PRIVATE_KEY_FILE);
    let public = dir.join(PUBLIC_KEY_FILE);
    for path in [&private, &public] {
        if path.symlink_metadata().is_ok() {
            return Err(KeyError::Exists {
                path: crate::diagnostic::display(path),
            });
        }
    }
    write_exclusive(&private, keys.private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_exclusive(&public, keys.public_pem.as_bytes(), 0o644) {
        // Not half a pair: the private key just written goes again.
        let _ = std::fs::remove_file(&private);
        return Err(e);
    }
    Ok((private, public))
}

/// Creates the directory `dir` and its missing parents readable by their owner only (0700):
/// they are made to hold a private key, as `ssh-keygen` makes `~/.ssh`.
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| KeyError::Write {
        path: crate::diagnostic::display(dir),
        reason: e.to_string(),
    })
}

/// Creates `path` (failing if it exists, even as a dangling link) with `mode` and `content`.
fn write_exclusive(path: &Path, content: &[u8], mode: u32) -> Result<(), KeyError> {
    let shown = crate::diagnostic::display(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => KeyError::Exists {
            path: shown.clone(),
        },
        _ => KeyError::Write {
            path: shown.clone(),
            reason: e.to_string(),
        },
    })?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyError::Write {
            path: shown,
            reason: e.to_string(),
        })
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    crate::files::read_regular_text(path, KEY_FILE_MAX).map_err(|e| KeyError::Read {
        path: crate::diagnostic::display(path),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap key pair for tests (scrypt makes each encryption take a moment).
    fn keys(password: &str) -> (tempfile::TempDir, NewKeys) {
        let dir = tempfile::tempdir().unwrap();
        let keys = NewKeys::generate(&Password::new(password)).unwrap();
        (dir, keys)
    }

    #[test]
    fn generated_keys_load_sign_and_verify() {
        let (dir, new) = keys("correct horse");
        let (private, public) = write_new(dir.path(), &new).unwrap();
        let text = std::fs::read_to_string(&private).unwrap();
        assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        assert!(
            std::fs::read_to_string(&public)
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&private).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key = SigningKey::load(&private, &Password::new("correct horse")).unwrap();
        let public = PublicKey::load(&public).unwrap();
        assert_eq!(key.public().id(), public.id());
        assert_eq!(public.id(), &new.id);
        let signature = key.sign(b"payload").unwrap();
        assert!(public.verifies(&signature, b"payload"));
        assert!(!public.verifies(&signature, b"payload!"));
        // Nothing secret in Debug output.
        assert!(!format!("{key:?}{new:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_wrong_password_is_named_as_such() {
        let (dir, new) = keys("right");
        let (private, _) = write_new(dir.path(), &new).unwrap();
        let err = SigningKey::load(&private, &Password::new("wrong")).unwrap_err();
        assert!(matches!(err, KeyError::WrongPassword { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("wrong password for the private key")
        );
        assert!(!err.to_string().contains("wrong\""));
    }

    #[test]
    fn keys_are_never_overwritten() {
        let (dir, new) = keys("p");
        write_new(dir.path(), &new).unwrap();
        let before = std::fs::read(dir.path().join(PRIVATE_KEY_FILE)).unwrap();
        let err = write_new(dir.path(), &new).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err:?}");
        assert_eq!(
            std::fs::read(dir.path().join(PRIVATE_KEY_FILE)).unwrap(),
            before
        );
        // Only the public key there: still refused, and no private key is left behind.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join(PUBLIC_KEY_FILE), "x").unwrap();
        assert!(matches!(
            write_new(other.path(), &new),
            Err(KeyError::Exists { .. })
        ));
        assert!(!other.path().join(PRIVATE_KEY_FILE).exists());
    }

    #[test]
    fn public_and_private_keys_are_not_mistaken_for_each_other() {
        let (dir, new) = keys("p");
        let (private, public) = write_new(dir.path(), &new).unwrap();
        let err = PublicKey::load(&private).unwrap_err();
        assert!(err.to_string().contains("this is a private key"), "{err}");
        let err = SigningKey::load(&public, &Password::new("p")).unwrap_err();
        assert!(err.to_string().contains("this is a public key"), "{err}");
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "not a key").unwrap();
        assert!(matches!(
            PublicKey::load(&garbage),
            Err(KeyError::NotAKey { .. })
        ));
    }

    #[test]
    fn key_ids_read_back_in_both_forms() {
        let id = KeyId::of(b"spki");
        assert_eq!(KeyId::parse(&id.full()), Some(id.clone()));
        assert_eq!(KeyId::parse(&id.hint()), Some(id.clone()));
        assert_eq!(KeyId::parse("sha256:00"), None);
        assert_eq!(id.to_string().len(), "sha256:".len() + 12);
    }
}
