//! End-to-end tests of the simulator pages (ICD §11): the CLETS, DOJ and LEA simulators run in-process on
//! `127.0.0.1:0`, get real traffic (CLETS frames over TCP, signed HTTP requests), and their page and forms
//! are driven over real HTTP with reqwest, posting forms as a browser does.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac as _};
use porter_adapters::clets::CletsClient;
use porter_simulators::common::page::{FORM_FIELDS, MAX_FIELD_CHARS};
use porter_simulators::{clets, doj, lea};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sha2::Sha256;
use support::{Sim, notice};
use tokio::net::TcpListener;

/// How many messages each test sends: more than one page of 50.
const MESSAGES: usize = 60;

/// A client that, like a test of a form post should, does not follow the `303`.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// `GET /<query>`: checks it is `200 text/html` and returns the page.
async fn page(http: &reqwest::Client, sim: &Sim, query: &str) -> String {
    let response = http.get(sim.url(&format!("/{query}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    response.text().await.unwrap()
}

async fn get_json(http: &reqwest::Client, sim: &Sim, path: &str) -> Value {
    let response = http.get(sim.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

async fn post_form(http: &reqwest::Client, sim: &Sim, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http.post(sim.url(path)).form(form).send().await.unwrap()
}

/// The page shows every counter of `/_sim/state` with its value (some of them non-zero), and the forms.
async fn assert_counters_and_forms(http: &reqwest::Client, sim: &Sim) -> String {
    let html = page(http, sim, "").await;
    let state = get_json(http, sim, "/_sim/state").await;
    let counters = state["counters"].as_object().unwrap();
    assert!(counters.values().any(|v| v.as_u64() > Some(0)), "{counters:?}");
    for (name, value) in counters {
        let row = format!("<tr><th>{name}</th><td>{value}</td></tr>");
        assert!(html.contains(&row), "{row} missing");
    }
    assert!(html.contains("<form method=\"post\" action=\"/_sim/faults/form\">"));
    for field in FORM_FIELDS {
        assert!(html.contains(&format!("name=\"{field}\"")), "{field} missing");
    }
    assert!(html.contains("<form method=\"post\" action=\"/_sim/reset/form\">"));
    html
}

/// Page 1 holds the newest 50 messages, newest first; page 2 the older ones; each links to the other.
/// `label(i)` is text found only in message `i` (1 = oldest of the numbered ones).
async fn assert_paging(http: &reqwest::Client, sim: &Sim, total: usize, label: impl Fn(usize) -> String) {
    let first = page(http, sim, "").await;
    assert!(first.contains(&format!("{total} messages, newest first; page 1 of 2.")));
    assert!(first.contains("<a href=\"/?page=2\">older</a>"));
    let newest = first.find(&label(MESSAGES)).expect("the newest message is on page 1");
    let next = first.find(&label(MESSAGES - 1)).unwrap();
    assert!(newest < next, "newest first");
    assert!(first.contains(&label(MESSAGES - 49)));
    assert!(!first.contains(&label(MESSAGES - 50)));

    let second = page(http, sim, "?page=2").await;
    assert!(second.contains("page 2 of 2."));
    assert!(second.contains("<a href=\"/?page=1\">newer</a>"));
    assert!(second.contains(&label(MESSAGES - 50)));
    assert!(second.contains(&label(1)));
    assert!(!second.contains(&label(MESSAGES - 49)));
}

/// Posting the faults form answers `303` to `/` and returns the faults then in force.
async fn set_faults_by_form(http: &reqwest::Client, sim: &Sim, form: &[(&str, &str)]) -> Value {
    let response = post_form(http, sim, "/_sim/faults/form", form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    get_json(http, sim, "/_sim/faults").await
}

/// A bad form is `400`, an HTML page naming `field`, and the faults stay as they were.
async fn assert_bad_form_refused(http: &reqwest::Client, sim: &Sim, form: &[(&str, &str)], field: &str) {
    let before = get_json(http, sim, "/_sim/faults").await;
    let response = post_form(http, sim, "/_sim/faults/form", form).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{form:?}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains(field), "{html}");
    assert_eq!(get_json(http, sim, "/_sim/faults").await, before);
}

/// The reset form answers `303` to `/` and leaves counters at 0, no messages and no faults.
async fn assert_reset_form_clears(http: &reqwest::Client, sim: &Sim, no_faults: Value) {
    let response = post_form(http, sim, "/_sim/reset/form", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    let state = get_json(http, sim, "/_sim/state").await;
    let counters = state["counters"].as_object().unwrap();
    // `connections` counts TCP connections, and the page's client keeps its connection open.
    assert!(
        counters.iter().all(|(name, v)| name == "connections" || v == 0),
        "{counters:?}"
    );
    assert_eq!(get_json(http, sim, "/_sim/messages").await, json!([]));
    assert_eq!(get_json(http, sim, "/_sim/faults").await, no_faults);
    assert!(
        page(http, sim, "")
            .await
            .contains("0 messages, newest first; page 1 of 1.")
    );
}

fn no_faults() -> Value {
    json!({"latency_ms": 0, "busy_rate": 0.0, "reject_rate": 0.0, "disconnect_rate": 0.0, "down": false})
}

/// The faults the tests post through the form, and what `GET /_sim/faults` shows for them.
const FAULTS_FORM: [(&str, &str); 5] = [
    ("latency_ms", "5"),
    ("busy_rate", "0.25"),
    ("reject_rate", "0.5"),
    ("disconnect_rate", ""),
    ("down", "true"),
];

fn faults_set() -> Value {
    json!({"latency_ms": 5, "busy_rate": 0.25, "reject_rate": 0.5, "disconnect_rate": 0.0, "down": true})
}

// ---- CLETS ----

fn mcn(i: usize) -> String {
    format!("{i:04}0ABCDEFGHIJKLMNO")
}

fn epo(i: usize) -> String {
    format!(
        "EPO.CA034025J.{}.NAM/DOE, JOHN ALLEN.SEX/M.RAC/W.DOB/19850214.PNO/24DV{i:05}.OCA/24FL001234.TYP/DV.\
         ISD/20261125.EXP/20311125.BRD/Y.PCO/01.PPN/DOE, JANE B.PSX/F.",
        mcn(i)
    )
}

/// The CLETS page (on the control address) shows the counters, pages through the logged frames (escaped),
/// sets faults from its form, refuses a bad form and resets.
#[tokio::test]
async fn clets_page_shows_state_and_its_forms_work() {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let clets_addr = tcp.local_addr().unwrap().to_string();
    let sim =
        Sim::start(|control, shutdown| clets::run(tcp, control, clets::CletsSimConfig::default(), shutdown)).await;
    let client = CletsClient::new(clets_addr, 1, Duration::from_secs(5));
    // Message 0: markup in a frame's header, which the page must show as text, and person fields and a
    // long field after it, which the page leaves out (it shows a frame's header only).
    let long = "X".repeat(4000);
    let markup = format!("EPO.<script>alert(1)</script>.{}.NAM/DOE, JOHN.MIS/{long}.", mcn(0));
    client.send(markup.as_bytes()).await.unwrap();
    for i in 1..=MESSAGES {
        client.send(epo(i).as_bytes()).await.unwrap();
    }
    drop(client);
    let http = browser();

    let html = assert_counters_and_forms(&http, &sim).await;
    assert!(html.contains("<title>CLETS simulator</title>"));
    assert_paging(&http, &sim, MESSAGES + 1, |i| format!("EPO.CA034025J.{}.", mcn(i))).await;
    let oldest = page(&http, &sim, "?page=2").await;
    assert!(oldest.contains(&format!("EPO.&lt;script&gt;alert(1)&lt;/script&gt;.{}.…", mcn(0))));
    assert!(!oldest.contains("<script"));
    assert!(!oldest.contains("NAM/"), "no person field of a frame is shown");
    assert!(!oldest.contains(&long[..MAX_FIELD_CHARS]));

    assert_eq!(set_faults_by_form(&http, &sim, &FAULTS_FORM).await, faults_set());
    let html = page(&http, &sim, "").await;
    assert!(
        html.contains("<th>busy_rate</th><td>0.25</td>"),
        "the faults in force are shown"
    );
    assert!(
        html.contains("value=\"true\" checked"),
        "the form shows the faults in force"
    );
    assert_bad_form_refused(&http, &sim, &[("busy_rate", "2")], "busy_rate").await;
    assert_bad_form_refused(&http, &sim, &[("latency_ms", "soon")], "latency_ms").await;
    assert_bad_form_refused(&http, &sim, &[("rate", "1")], "rate").await;

    assert_reset_form_clears(&http, &sim, no_faults()).await;
    sim.stop().await;
}

// ---- DOJ ----

const DOJ_TOKEN: &str = "doj-test-token";

fn doj_key(i: usize) -> String {
    format!("por:CA034025J:24DV01234:{i}:DOJ:0")
}

/// The DOJ page (on the service address) shows the counters, pages through the logged requests, sets
/// faults from its form (the agency field is ignored, as in the JSON body), refuses a bad form and resets.
#[tokio::test]
async fn doj_page_shows_state_and_its_forms_work() {
    let config = doj::DojSimConfig {
        tokens: vec![DOJ_TOKEN.into()],
        ..doj::DojSimConfig::default()
    };
    let sim = Sim::start(|listener, shutdown| doj::run(listener, config, shutdown)).await;
    for i in 1..=MESSAGES {
        let action = if i == 1 { "ISSUE" } else { "MODIFY" };
        let mut request = sim
            .http
            .post(sim.url(doj::NOTICES_PATH))
            .header("content-type", "application/xml")
            .header("idempotency-key", doj_key(i))
            .body(notice(action, u32::try_from(i).unwrap()));
        // Every seventh without a token: refused, and logged all the same.
        if i % 7 != 0 {
            request = request.bearer_auth(DOJ_TOKEN);
        }
        request.send().await.unwrap();
    }
    let http = browser();

    let html = assert_counters_and_forms(&http, &sim).await;
    assert!(html.contains("<title>DOJ simulator</title>"));
    assert!(html.contains(doj::NOTICES_PATH), "the messages are listed");
    assert_paging(&http, &sim, MESSAGES, |i| format!(">{}<", doj_key(i))).await;

    let mut form = FAULTS_FORM.to_vec();
    form.push(("agency", "CA0341100"));
    assert_eq!(set_faults_by_form(&http, &sim, &form).await, faults_set());
    assert_bad_form_refused(&http, &sim, &[("reject_rate", "-0.5")], "reject_rate").await;
    assert_bad_form_refused(&http, &sim, &[("down", "perhaps")], "down").await;

    assert_reset_form_clears(&http, &sim, no_faults()).await;
    sim.stop().await;
}

// ---- LEA ----

const POLICE: &str = "CA0341100";
const POLICE_SECRET: &str = "police-secret";

fn lea_key(i: usize) -> String {
    format!("por:CA034025J:24DV01234:{i}:LEA-{POLICE}:0")
}

/// An ICD §8 body: the action and the full current order.
fn lea_body(action: &str, sequence: usize) -> String {
    json!({
        "action": action,
        "court_ori": "CA034025J",
        "order_number": "24DV01234",
        "sequence": sequence,
        "order": {"order_type": "DV", "case_number": "24FL001234", "conditions": ["01"]}
    })
    .to_string()
}

/// `X-POR-Signature: t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (ICD §8).
fn lea_signature(body: &str) -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut mac = Hmac::<Sha256>::new_from_slice(POLICE_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The LEA page (on the service address) shows the global and per-agency counters, pages through the
/// logged requests, sets an agency's faults from its form, refuses a bad form (an agency not served
/// among them) and resets.
#[tokio::test]
async fn lea_page_shows_state_and_its_forms_work() {
    let config = lea::LeaSimConfig {
        agencies: vec![lea::LeaSimAgency {
            ori: POLICE.into(),
            secret: POLICE_SECRET.into(),
        }],
        ..lea::LeaSimConfig::default()
    };
    let sim = Sim::start(|listener, shutdown| lea::run(listener, config, shutdown)).await;
    for i in 1..=MESSAGES {
        let action = if i == 1 { "ISSUE" } else { "MODIFY" };
        let body = lea_body(action, i);
        let mut request = sim
            .http
            .post(sim.url(&format!("/{POLICE}/orders")))
            .header("content-type", "application/json")
            .header("idempotency-key", lea_key(i))
            .body(body.clone());
        // Every seventh unsigned: refused, and logged all the same.
        if i % 7 != 0 {
            request = request.header("x-por-signature", lea_signature(&body));
        }
        request.send().await.unwrap();
    }
    let http = browser();

    let html = assert_counters_and_forms(&http, &sim).await;
    assert!(html.contains("<title>LEA simulator</title>"));
    assert!(html.contains("<h3>Counters by agencies</h3>"));
    assert!(
        html.contains(&format!("<tr><th>{POLICE}</th><td>")),
        "the agency's counters are shown"
    );
    assert_paging(&http, &sim, MESSAGES, |i| format!(">{}<", lea_key(i))).await;

    let mut form = FAULTS_FORM.to_vec();
    form.push(("agency", POLICE));
    let faults = set_faults_by_form(&http, &sim, &form).await;
    assert_eq!(faults["agencies"][POLICE], faults_set());
    assert_eq!(faults["global"], no_faults());
    assert_bad_form_refused(&http, &sim, &[("agency", "CA9999999")], "agency").await;
    assert_bad_form_refused(&http, &sim, &[("agency", "police")], "agency").await;
    assert_bad_form_refused(&http, &sim, &[("disconnect_rate", "1.5")], "disconnect_rate").await;

    assert_reset_form_clears(&http, &sim, json!({"global": no_faults(), "agencies": {}})).await;
    sim.stop().await;
}
