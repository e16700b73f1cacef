//! Who may open the supervisor view: HTTP Basic authentication checked against the Argon2
//! password hashes of `web.users`, and the roles `analyst` and `supervisor` (D83).
//!
//! A password is checked with Argon2 once; after that, the SHA-256 of the last password that
//! passed for the user is kept in memory, so that the pages a browser loads one after the
//! other do not each cost an Argon2 run. A wrong password, or an unknown user (checked
//! against a hash of its own, so that it takes as long), always costs one.
//!
//! Guessing is throttled: after [`MAX_FAILURES`] failed sign-ins under one name within
//! [`WINDOW`], that name is refused (429, with `Retry-After`) until the oldest of them is
//! older than the window, without an Argon2 run. Names that are not users share one count,
//! so the memory is bounded by the number of users, and a guesser cannot spend the
//! service's CPU on Argon2 faster than that.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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
    /// Recent failed sign-ins by name (every unknown name counted under `""`).
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Failed sign-ins under one name that are allowed within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;

/// The window of [`MAX_FAILURES`].
pub const WINDOW: Duration = Duration::from_secs(60);

/// Why a sign-in did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong name or password.
    Wrong,
    /// Too many failures under the name; try again after this long.
    Throttled(Duration),
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
            failures: Mutex::default(),
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

    /// The role of `name` if `password` is its password (blocks for an Argon2 check), at
    /// the wall time `now`.
    pub fn check(&self, name: &str, password: &str, now: Instant) -> Result<WebRole, Refusal> {
        let key = if self.by_name.contains_key(name) {
            name
        } else {
            ""
        };
        if let Some(wait) = self.throttled(key, now) {
            return Err(Refusal::Throttled(wait));
        }
        match self.verified(name, password) {
            Some(role) => {
                self.lock_failures().remove(key);
                Ok(role)
            }
            None => {
                self.lock_failures()
                    .entry(key.to_owned())
                    .or_default()
                    .push_back(now);
                Err(Refusal::Wrong)
            }
        }
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long `key` is still refused at `now`, if it is (forgetting failures older than
    /// the window).
    fn throttled(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut failures = self.lock_failures();
        let recent = failures.get_mut(key)?;
        while recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            recent.pop_front();
        }
        if recent.is_empty() {
            failures.remove(key);
            return None;
        }
        (recent.len() >= MAX_FAILURES)
            .then(|| recent.front().map(|t| WINDOW.saturating_sub(now - *t)))
            .flatten()
    }

    /// The role of `name` if `password` is its password.
    fn verified(&self, name: &str, password: &str) -> Option<WebRole> {
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
            Err(Failure(WebError::Forbidden(self.role.as_str()), self.form))
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
        let checked =
            tokio::task::spawn_blocking(move || app.users.check(&user, &password, Instant::now()))
                .await
                .unwrap_or(Err(Refusal::Wrong));
        match checked {
            Ok(role) => Ok(Viewer { name, role, form }),
            Err(Refusal::Wrong) => {
                tracing::info!(user = %name, "refused a sign-in");
                Err(refused())
            }
            Err(Refusal::Throttled(wait)) => {
                tracing::warn!(user = %name, "throttled sign-ins after repeated failures");
                Err(Failure(WebError::Throttled(wait.as_secs() + 1), form))
            }
        }
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
        let t0 = Instant::now();
        assert_eq!(users.check("ana", "s3cret", t0), Ok(WebRole::Analyst));
        // Again, from the kept digest.
        assert_eq!(users.check("ana", "s3cret", t0), Ok(WebRole::Analyst));
        assert_eq!(users.check("ana", "s3cret ", t0), Err(Refusal::Wrong));
        assert_eq!(users.check("bob", "s3cret", t0), Err(Refusal::Wrong));
        assert!(!format!("{users:?}").contains("argon2"));

        // Throttling: the fifth failure within the window refuses even the right password
        // until the first failure leaves the window; a success clears the count.
        let at = |s: u64| t0 + Duration::from_secs(s);
        for s in 1..MAX_FAILURES as u64 {
            assert_eq!(users.check("ana", "wrong", at(s)), Err(Refusal::Wrong));
        }
        assert_eq!(
            users.check("ana", "s3cret", at(10)),
            Err(Refusal::Throttled(Duration::from_secs(50)))
        );
        assert_eq!(users.check("ana", "s3cret", at(61)), Ok(WebRole::Analyst));
        assert_eq!(users.check("ana", "wrong", at(62)), Err(Refusal::Wrong));
        assert_eq!(users.check("ana", "s3cret", at(62)), Ok(WebRole::Analyst));
        // Unknown names share one count, which does not touch the users'.
        for s in 0..MAX_FAILURES as u64 {
            assert_eq!(
                users.check(&format!("x{s}"), "p", at(70)),
                Err(Refusal::Wrong)
            );
        }
        assert!(matches!(
            users.check("y", "p", at(71)),
            Err(Refusal::Throttled(_))
        ));
        assert_eq!(users.check("ana", "s3cret", at(71)), Ok(WebRole::Analyst));
        assert_eq!(users.lock_failures().len(), 1);

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
