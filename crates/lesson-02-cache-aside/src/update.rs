//! The body of `PUT /users/{id}`: reading it, and what a valid one is.
//!
//! Validation is the service's own, not the database's: a value PostgreSQL
//! would refuse (a NUL byte in `text`) must be a 400 that names the mistake,
//! not a 500 from a failed statement, and a value it would store (a name of
//! only zero-width spaces) must not be stored just because it fits the
//! column.

use lab::http::{ApiError, shown};
use serde::Deserialize;

/// The body of `PUT /users/{id}`. Unknown fields are an error, not ignored:
/// a typo such as `"emial"` must not look like a successful update.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub name: String,
    pub email: String,
}

/// The longest name, in characters, after trimming.
const MAX_NAME_CHARS: usize = 100;
/// The longest email, in bytes (the practical limit mail servers use).
const MAX_EMAIL_BYTES: usize = 255;

impl UpdateUser {
    pub fn validate(&self) -> Result<(), ApiError> {
        // Control characters (NUL, escape, newline, DEL, the C1 range) have
        // no place in a name, not even at its ends where `trim` would drop
        // some of them: PostgreSQL refuses NUL outright, and the others
        // rewrite terminals and log lines that print the name later.
        if self.name.contains(char::is_control) {
            return Err(ApiError::BadRequest(
                "name must not contain control characters".into(),
            ));
        }
        let name = self.name.trim();
        // A name that is only spaces and invisible format characters looks
        // empty to every reader, so it is empty; so is one of only
        // combining marks, accents with no letter to sit on.
        let visible = |c: char| !is_invisible(c) && !is_combining(c);
        if !name.chars().any(visible) || name.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::BadRequest(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters, some of them visible"
            )));
        }
        let email = self.email.trim();
        if self.email.contains(char::is_control) || !is_email(email) {
            return Err(ApiError::BadRequest(format!(
                "{} is not an email address",
                shown(email)
            )));
        }
        Ok(())
    }
}

/// Whitespace, or a character of Unicode's "format" category (`Cf`) that
/// renders as nothing: zero-width spaces and joiners, the byte-order mark,
/// the soft hyphen, bidirectional marks. They are fine inside a name (a
/// zero-width joiner builds some scripts' letters and many emoji), not as
/// all of it.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(c,
            '\u{00AD}'                  // soft hyphen
            | '\u{061C}'                // Arabic letter mark
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width space, (non-)joiner, LRM, RLM
            | '\u{202A}'..='\u{202E}'   // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}'   // bidirectional isolates, deprecated formats
            | '\u{FEFF}'                // byte-order mark, zero-width no-break space
            | '\u{E0000}'..='\u{E007F}' // tag characters
        )
}

/// A combining mark (the main blocks of Unicode's `Mn`): an accent or a
/// diacritic drawn on the character before it. Fine after a letter, but a
/// name of nothing else shows nothing to stand on.
fn is_combining(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'   // combining diacritical marks
        | '\u{1AB0}'..='\u{1AFF}' // their extension
        | '\u{1DC0}'..='\u{1DFF}' // their supplement
        | '\u{20D0}'..='\u{20FF}' // for symbols
        | '\u{FE20}'..='\u{FE2F}' // half marks
    )
}

/// `user@domain` with a non-empty user, a domain of at least two non-empty
/// dot-separated labels, and no whitespace, control or invisible character.
/// Deliberately loose beyond that (RFC 5322 allows far more than anyone
/// types): the only real check of an address is a mail that arrives.
fn is_email(email: &str) -> bool {
    if email.len() > MAX_EMAIL_BYTES || email.chars().any(|c| c.is_control() || is_invisible(c)) {
        return false;
    }
    let Some((user, domain)) = email.split_once('@') else {
        return false;
    };
    let mut labels = domain.split('.');
    !user.is_empty()
        && !domain.contains('@')
        && labels.clone().count() >= 2
        && labels.all(|label| !label.is_empty())
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

    #[test]
    fn control_characters_and_nul_are_rejected_anywhere() {
        for name in [
            "A\0da",
            "\0",
            "Ada\u{7}",
            "Ada\u{1b}[2J",
            "A\nda",
            "Ada\u{7f}",
            "Ada\u{85}",
        ] {
            assert!(
                update(name, "ada@example.com").validate().is_err(),
                "{name:?}"
            );
        }
        for email in ["a\0@b.c", "a@b.c\0", "a@b\u{1}.c", "a\u{200b}@b.c"] {
            assert!(update("Ada", email).validate().is_err(), "{email:?}");
        }
    }

    #[test]
    fn a_name_must_have_something_visible() {
        for name in [
            " ",
            "\u{200b}",
            "\u{200b}\u{200c}\u{200d}",
            "\u{2060}\u{feff}",
            " \u{00ad} ",
            "\u{202e}",
            "\u{0301}\u{0301}",
            " \u{20dd} ",
        ] {
            assert!(
                update(name, "ada@example.com").validate().is_err(),
                "{name:?}"
            );
        }
        // Invisible characters inside a visible name are fine: a zero-width
        // joiner is part of many emoji and of some scripts' spelling.
        for name in [
            "Ada",
            "  Ada  ",
            "👩\u{200d}💻 Ada",
            "می\u{200c}خواهم",
            "Rene\u{0301}e",
        ] {
            assert!(
                update(name, "ada@example.com").validate().is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn an_email_domain_has_non_empty_labels() {
        for email in ["x@.", "x@a.", "x@.a", "x@a..b", "x@", "x@@a.b", "x@a@b.c"] {
            assert!(update("Ada", email).validate().is_err(), "{email:?}");
        }
        for email in ["x@a.b", "first.last+tag@mail.example.co.uk"] {
            assert!(update("Ada", email).validate().is_ok(), "{email:?}");
        }
    }

    #[test]
    fn a_rejected_email_is_repeated_only_in_part() {
        let long = format!("{}@nodot", "x".repeat(100_000));
        let msg = update("Ada", &long)
            .validate()
            .expect_err("invalid")
            .to_string();
        assert!(msg.len() < 100, "{} bytes", msg.len());
    }
}
