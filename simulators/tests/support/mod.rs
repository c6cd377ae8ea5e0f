//! A harness for the HTTP partner simulators' end-to-end tests: runs a simulator in-process on
//! `127.0.0.1:0` and talks to it over real HTTP with reqwest.

// Each test file uses a different part of the harness.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use porter_simulators::common::http::HttpMessageEntry;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A simulator running in-process.
pub struct Sim {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A pooled client (one keep-alive connection for sequential requests).
    pub http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The shutdown future handed to `run`.
pub type Shutdown = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl Sim {
    /// Binds an ephemeral port and spawns `run(listener, shutdown)`.
    pub async fn start<F, Fut>(run: F) -> Self
    where
        F: FnOnce(TcpListener, Shutdown) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: Shutdown = Box::pin(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(run(listener, shutdown));
        Self {
            base,
            http: reqwest::Client::new(),
            stop,
            task,
        }
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /_sim/state`.
    pub async fn state<T: DeserializeOwned>(&self) -> T {
        self.get_json("/_sim/state").await
    }

    /// `GET /_sim/state` as JSON.
    pub async fn state_json(&self) -> Value {
        self.get_json("/_sim/state").await
    }

    /// `GET /_sim/messages`.
    pub async fn messages(&self) -> Vec<HttpMessageEntry> {
        self.get_json("/_sim/messages").await
    }

    /// `GET` a control path and parse its JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> T {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.unwrap()
    }

    /// `POST /_sim/faults` with a JSON body; the status answered.
    pub async fn set_faults(&self, body: Value) -> reqwest::StatusCode {
        self.http
            .post(self.url("/_sim/faults"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// `POST /_sim/reset`.
    pub async fn reset(&self) {
        let response = self.http.post(self.url("/_sim/reset")).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
    }

    /// Stops the simulator and checks that `run` returned `Ok`.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the simulator stops within 5 s")
            .unwrap()
            .unwrap();
    }
}

/// A response's status and JSON body.
pub async fn status_and_json(response: reqwest::Response) -> (reqwest::StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// A client that opens a new connection for every request.
pub fn unpooled_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

/// A small ICD §2 order message (valid against `schemas/por.xsd`), as Porter sends it to DOJ.
#[allow(dead_code)] // not every test binary talks to DOJ
pub fn notice(action: &str, sequence: u32) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<por:ProtectiveOrderMessage xmlns:por="urn:por:order:1"
    xmlns:nc="http://release.niem.gov/niem/niem-core/4.0/"
    xmlns:j="http://release.niem.gov/niem/domains/jxdm/6.0/">
  <por:MessageHeader>
    <por:CourtORI>CA034025J</por:CourtORI>
    <por:Action>{action}</por:Action>
    <por:Sequence>{sequence}</por:Sequence>
    <por:SentDateTime>2026-11-25T10:15:00-08:00</por:SentDateTime>
  </por:MessageHeader>
  <por:ProtectionOrder>
    <nc:ActivityIdentification><nc:IdentificationID>24DV01234</nc:IdentificationID></nc:ActivityIdentification>
    <por:CaseNumber>24FL001234</por:CaseNumber>
    <por:OrderType>DV</por:OrderType>
    <por:BradyCode>Y</por:BradyCode>
    <j:ProtectionOrderConditionCode>07</j:ProtectionOrderConditionCode>
  </por:ProtectionOrder>
  <por:RestrainedPerson>
    <nc:PersonName><nc:PersonGivenName>JOHN</nc:PersonGivenName><nc:PersonSurName>DOE</nc:PersonSurName></nc:PersonName>
    <nc:PersonBirthDate><nc:Date>1985-02-14</nc:Date></nc:PersonBirthDate>
  </por:RestrainedPerson>
</por:ProtectiveOrderMessage>"#
    )
}
