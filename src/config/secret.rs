//! Secrets in the configuration: partner tokens and signing keys.
//!
//! A secret is written in the TOML file as one of:
//! - `"env:NAME"`: the value of environment variable `NAME`;
//! - `"file:PATH"`: the contents of a file (trailing newline removed), with
//!   `PATH` relative to the configuration file's folder;
//! - anything else: the value itself (for tests and throw-away setups only:
//!   a secret written into a file under version control is no secret).
//!
//! References are resolved once, when the configuration is loaded; a
//! missing variable or file is a configuration error naming the reference,
//! never the value. `Debug` never shows the value.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// A secret, as written and, once resolved, its value.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(from = "String")]
pub struct Secret {
    spec: String,
    value: Option<String>,
}

impl From<String> for Secret {
    fn from(spec: String) -> Secret {
        let literal = !spec.starts_with("env:") && !spec.starts_with("file:");
        let value = literal.then(|| spec.clone());
        Secret { spec, value }
    }
}

impl Secret {
    /// A secret given by its value (tests, the demo).
    pub fn literal(value: impl Into<String>) -> Secret {
        let value = value.into();
        Secret {
            spec: "(literal)".into(),
            value: Some(value),
        }
    }

    /// Reads an `env:` or `file:` reference; a literal is already resolved.
    pub fn resolve(&mut self, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
        if self.value.is_some() {
            return Ok(());
        }
        let value = if let Some(name) = self.spec.strip_prefix("env:") {
            env(name).ok_or_else(|| format!("secret {:?}: environment variable {name} is not set", self.spec))?
        } else if let Some(file) = self.spec.strip_prefix("file:") {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("secret {:?}: cannot read {}: {e}", self.spec, path.display()))?;
            text.trim_end_matches(['\n', '\r']).to_string()
        } else {
            self.spec.clone()
        };
        if value.is_empty() {
            return Err(format!("secret {:?} is empty", self.spec));
        }
        self.value = Some(value);
        Ok(())
    }

    /// The value; `None` until resolved.
    pub fn expose(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// How the secret was written (safe to show).
    pub fn spec(&self) -> &str {
        if self.spec.starts_with("env:") || self.spec.starts_with("file:") {
            &self.spec
        } else {
            "(literal)"
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.spec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `env:` reads the variable, `file:` reads the file relative to the
    /// configuration's folder, and a plain string is its own value.
    #[test]
    fn references_resolve() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
        let env = |k: &str| (k == "TOKEN").then(|| "from-env".to_string());
        let mut a = Secret::from("env:TOKEN".to_string());
        a.resolve(dir.path(), &env).unwrap();
        assert_eq!(a.expose(), Some("from-env"));
        let mut b = Secret::from("file:token".to_string());
        b.resolve(dir.path(), &env).unwrap();
        assert_eq!(b.expose(), Some("s3cret"));
        assert_eq!(Secret::from("plain".to_string()).expose(), Some("plain"));
    }

    /// A missing reference is an error that names the reference, and Debug
    /// never prints a value.
    #[test]
    fn missing_reference_is_an_error_and_values_stay_hidden() {
        let mut s = Secret::from("env:NOPE".to_string());
        let err = s.resolve(Path::new("."), &|_| None).unwrap_err();
        assert!(err.contains("NOPE"), "{err}");
        assert_eq!(
            format!("{:?}", Secret::from("hunter2".to_string())),
            "Secret((literal))"
        );
    }
}
