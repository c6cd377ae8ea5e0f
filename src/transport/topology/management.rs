//! A small client of the RabbitMQ management HTTP API: what `porter
//! topology --apply` needs (policies, users, permissions), nothing more.
//!
//! Every call is a `PUT` of the whole object, so applying twice gives the
//! same result. The credentials are the management URL's `user:password@`
//! or, without them, the AMQP URL's; they are sent as HTTP basic auth and
//! never printed (errors show the URL without them).

use anyhow::{Context, anyhow, bail};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::Value;

/// How to enable the plugin, for error messages.
pub const ENABLE_HINT: &str = "is the management plugin enabled? `rabbitmq-plugins enable rabbitmq_management` \
     (scripts/services.sh does it for the local RabbitMQ)";

pub struct Management {
    base: Url,
    user: String,
    password: String,
    http: reqwest::Client,
}

impl Management {
    /// `url` is `http://[user:password@]host:port`; `fallback` are the
    /// credentials used when it has none.
    pub fn new(url: &str, fallback: (&str, &str)) -> anyhow::Result<Management> {
        let mut base = Url::parse(url).with_context(|| format!("management URL {:?} is not a URL", redact(url)))?;
        let (user, password) = if base.username().is_empty() {
            (fallback.0.to_string(), fallback.1.to_string())
        } else {
            (
                percent_decode(base.username()),
                percent_decode(base.password().unwrap_or_default()),
            )
        };
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Management {
            base,
            user,
            password,
            http,
        })
    }

    /// The user the API is called as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The URL, without credentials.
    pub fn url(&self) -> &Url {
        &self.base
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http URL has a path")
            .pop_if_empty()
            .push("api")
            .extend(segments);
        url
    }

    /// Checks that the API answers and accepts the credentials.
    pub async fn check(&self) -> anyhow::Result<()> {
        let url = self.endpoint(&["overview"]);
        let response = self
            .http
            .get(url.clone())
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "the RabbitMQ management API at {} does not answer ({e}); {ENABLE_HINT}",
                    self.base
                )
            })?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => bail!(
                "the RabbitMQ management API at {} refused user {:?}: wrong credentials, or the user lacks the \
                 `administrator` tag (set them in the management URL, `--management-url http://USER:PASSWORD@HOST:PORT`)",
                self.base,
                self.user
            ),
            StatusCode::NOT_FOUND => bail!("{url} is not the RabbitMQ management API; {ENABLE_HINT}"),
            s => bail!("GET {url}: HTTP {s}"),
        }
    }

    /// `GET /api/<segments>`; `None` when it does not exist.
    pub async fn get(&self, segments: &[&str]) -> anyhow::Result<Option<Value>> {
        let url = self.endpoint(segments);
        let response = self
            .http
            .get(url.clone())
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = ok(response, "GET", &url).await?;
        Ok(Some(response.json().await.with_context(|| format!("GET {url}"))?))
    }

    /// `PUT /api/<segments>` with `body`.
    pub async fn put(&self, segments: &[&str], body: &impl Serialize) -> anyhow::Result<()> {
        let url = self.endpoint(segments);
        let response = self
            .http
            .put(url.clone())
            .basic_auth(&self.user, Some(&self.password))
            .json(body)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        ok(response, "PUT", &url).await.map(|_| ())
    }
}

/// The response if it succeeded; otherwise an error with RabbitMQ's reason.
async fn ok(response: reqwest::Response, method: &str, url: &Url) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_string))
        .unwrap_or(body);
    bail!("{method} {url}: HTTP {status}: {reason}")
}

/// `%XX` sequences decoded (URL user information).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with any `user:password@` removed, for messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(unparseable URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Credentials come from the URL (decoded) or the fallback, and never
    /// appear in the URL the client shows; names are path-encoded (vhost
    /// `/` is `%2F`).
    #[test]
    fn credentials_and_paths() {
        let m = Management::new("http://ad%40min:p%3Ass@127.0.0.1:15672/", ("guest", "guest")).unwrap();
        assert_eq!((m.user.as_str(), m.password.as_str()), ("ad@min", "p:ss"));
        assert!(!m.url().as_str().contains("p%3Ass"));
        assert_eq!(
            m.endpoint(&["policies", "/", "por-dead"]).as_str(),
            "http://127.0.0.1:15672/api/policies/%2F/por-dead"
        );
        let f = Management::new("http://127.0.0.1:15672", ("guest", "pw")).unwrap();
        assert_eq!((f.user(), f.password.as_str()), ("guest", "pw"));
        assert_eq!(redact("http://a:secret@h:1/"), "http://h:1/");
    }
}
