//! The body of `PUT /users/{id}`, and what a valid one is.

use lab::http::ApiError;
use serde::Deserialize;

/// The body of `PUT /users/{id}`. Unknown fields are an error, not ignored:
/// a typo such as `"emial"` must not look like a successful update.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub name: String,
    pub email: String,
}

impl UpdateUser {
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::BadRequest(
                "name must be 1 to 100 characters".into(),
            ));
        }
        let email = self.email.trim();
        let well_formed = email.len() <= 255
            && !email.contains(char::is_whitespace)
            && email
                .split_once('@')
                .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
        if !well_formed {
            return Err(ApiError::BadRequest(format!(
                "{email:?} is not an email address"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, email: &str) -> UpdateUser {
        UpdateUser {
            name: name.into(),
            email: email.into(),
        }
    }

    #[test]
    fn updates_are_validated() {
        assert!(update("Ada", "ada@example.com").validate().is_ok());
        for (n, e) in [
            ("", "a@b.c"),
            ("Ada", "no-at-sign"),
            ("Ada", "a b@c.d"),
            ("Ada", "@c.d"),
            ("Ada", "a@nodot"),
        ] {
            assert!(update(n, e).validate().is_err(), "{n:?} {e:?}");
        }
        assert!(update(&"x".repeat(101), "a@b.c").validate().is_err());
    }
}
