//! Who may open the supervisor view: HTTP Basic authentication checked against the Argon2
//! password hashes of `web.users`, and the roles `analyst` and `supervisor` (D83).
//!
//! A password is checked with Argon2 once; after that, the SHA-256 of the last password that
//! passed for the user is kept in memory, so that the pages a browser loads one after the
//! other do not each cost an Argon2 run. A wrong password, or an unknown user (checked
//! against a hash of its own, so that it takes as long), always costs one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use connectors::config::{WebRole, WebUser};
use sha2::{Digest, Sha256};

use super::{allows, Failure, Form, Shared, WebError};

/// The users of the supervisor view.
pub struct Users {
    /// By name: the role and the password's PHC hash.
    by_name: BTreeMap<String, (WebRole, String)>,
    /// A hash no password is checked against but the unknown users'.
    decoy: String,
    /// By name: the SHA-256 of the password that last passed.
    passed: Mutex<HashMap<String, [u8; 32]>>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("names", &self.by_name.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Users {
    /// The configured users (their hashes were checked when the configuration was loaded).
    pub fn new(users: &[WebUser]) -> Self {
        Users {
            by_name: users
                .iter()
                .map(|u| {
                    (
                        u.name.clone(),
                        (u.role, u.password_hash.expose().to_owned()),
                    )
                })
                .collect(),
            decoy: hash_password("not a password of anyone").unwrap_or_default(),
            passed: Mutex::default(),
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there is no user.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The role of `name` if `password` is its password (blocks for an Argon2 check).
    pub fn check(&self, name: &str, password: &str) -> Option<WebRole> {
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let Some((role, hash)) = self.by_name.get(name) else {
            verify(&self.decoy, password);
            return None;
        };
        let mut passed = self.passed.lock().unwrap_or_else(PoisonError::into_inner);
        if passed.get(name) == Some(&digest) {
            return Some(*role);
        }
        drop(passed);
        if !verify(hash, password) {
            return None;
        }
        passed = self.passed.lock().unwrap_or_else(PoisonError::into_inner);
        passed.insert(name.to_owned(), digest);
        Some(*role)
    }
}

fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The PHC string of `password`'s Argon2id hash with a fresh salt, for `web.users`.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// The name and password of a `Basic` `Authorization` header.
fn basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}

/// A signed-in user of the supervisor view.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The login name.
    pub name: String,
    /// What the user may open.
    pub role: WebRole,
    /// How this request's failures are answered.
    form: Form,
}

impl Viewer {
    /// Fails with 403 unless the user's role allows what needs `role`.
    pub fn needs(&self, role: WebRole) -> Result<(), Failure> {
        if allows(self.role, role) {
            Ok(())
        } else {
            tracing::info!(user = %self.name, "refused a page its role may not open");
            Err(Failure(
                WebError::Forbidden(match self.role {
                    WebRole::Analyst => "analyst",
                    WebRole::Supervisor => "supervisor",
                }),
                self.form,
            ))
        }
    }
}

impl FromRequestParts<Shared> for Viewer {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Self, Failure> {
        let form = Form::of(parts.uri.path());
        let refused = || Failure(WebError::Unauthorized, form);
        let (name, password) = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(basic)
            .ok_or_else(refused)?;
        let app = app.clone();
        let user = name.clone();
        let role = tokio::task::spawn_blocking(move || app.users.check(&user, &password))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                tracing::info!(user = %name, "refused a sign-in");
                refused()
            })?;
        Ok(Viewer { name, role, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connectors::config::Secret;

    #[test]
    fn passwords_roles_and_headers() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let users = Users::new(&[WebUser {
            name: "ana".into(),
            role: WebRole::Analyst,
            password_hash: Secret::new(hash),
        }]);
        assert_eq!(users.check("ana", "s3cret"), Some(WebRole::Analyst));
        // Again, from the kept digest.
        assert_eq!(users.check("ana", "s3cret"), Some(WebRole::Analyst));
        assert_eq!(users.check("ana", "s3cret "), None);
        assert_eq!(users.check("bob", "s3cret"), None);
        assert!(!format!("{users:?}").contains("argon2"));

        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ana:a:b")
        );
        assert_eq!(basic(&header), Some(("ana".into(), "a:b".into())));
        assert_eq!(basic("Bearer abc"), None);
        assert_eq!(basic("Basic %%%"), None);

        assert!(allows(WebRole::Supervisor, WebRole::Analyst));
        assert!(allows(WebRole::Analyst, WebRole::Analyst));
        assert!(!allows(WebRole::Analyst, WebRole::Supervisor));
    }
}
