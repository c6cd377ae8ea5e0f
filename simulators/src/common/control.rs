//! The control API every partner simulator serves (ICD §11), for testers and test harnesses:
//! - `GET /_sim/state`: counters, faults and records;
//! - `GET /_sim/messages`: the recent requests, oldest first;
//! - `GET /_sim/faults`: the faults in force; `POST /_sim/faults`: replace them (the ICD faults body; a
//!   body that does not parse, or a rate outside 0..1, is `400` with `{"reason": ...}`);
//! - `POST /_sim/reset`: forget records, messages, counters and faults (`204`).
//!
//! And, for a tester with a browser, the simulator page ([`super::page`]):
//! - `GET /`: counters, faults and the recent messages as HTML (`?page=N`, `?refresh=N`);
//! - `POST /_sim/faults/form`: the faults as an HTML form posts them (`application/x-www-form-urlencoded`,
//!   the same fields as the JSON body); `303 See Other` to `/`, or `400` with an HTML page naming the field;
//! - `POST /_sim/reset/form`: the reset, answered `303 See Other` to `/`.
//!
//! The JSON and the form endpoints validate, apply and log faults through the same function, so they cannot
//! drift apart. The DOJ and LEA simulators merge these routes into their service's router (their own routes
//! are `POST /doj/firearms/v1/notices` and `POST /<ORI>/orders`, so `/` is free); CLETS serves them alone on
//! its control address.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize as _, Serialize};
use tracing::info;

use super::Faults;
use super::http::reason;
use super::page::{self, PageData, PageQuery};

/// What a simulator offers its control API.
pub trait SimControl: Send + Sync + 'static {
    /// The simulator's name in log lines ("CLETS", "DOJ", "LEA").
    const NAME: &'static str;
    /// The body of `GET /_sim/state`.
    type State: Serialize;
    /// One entry of `GET /_sim/messages`.
    type Message: Serialize;
    /// The body of `GET /_sim/faults` (and of the answer to `POST /_sim/faults`).
    type FaultsView: Serialize;

    /// Counters, faults and records.
    fn state(&self) -> Self::State;
    /// The logged requests, oldest first.
    fn messages(&self) -> Vec<Self::Message>;
    /// The faults in force.
    fn faults(&self) -> Self::FaultsView;
    /// Replaces faults that [`Faults::validate`] accepted; an `Err` is answered `400` with its reason.
    fn set_faults(&self, faults: Faults) -> Result<(), String>;
    /// Forgets records, messages, counters and faults.
    fn reset(&self);

    /// One logged request as the page at `/` shows it: by default every field of its JSON. A simulator
    /// whose log holds personal data (CLETS keeps whole request frames) shows less, since a page is
    /// read over shoulders; `GET /_sim/messages` keeps the whole entry.
    fn page_entry(message: &Self::Message) -> serde_json::Value {
        serde_json::to_value(message).unwrap_or_default()
    }
}

/// The control API's routes over a simulator.
pub fn router<S: SimControl>(sim: Arc<S>) -> Router {
    Router::new()
        .route("/_sim/state", get(state::<S>))
        .route("/_sim/messages", get(messages::<S>))
        .route("/_sim/faults", get(faults::<S>).post(set_faults::<S>))
        .route("/_sim/reset", post(reset::<S>))
        .route("/", get(page::<S>))
        .route("/_sim/faults/form", post(set_faults_form::<S>))
        .route("/_sim/reset/form", post(reset_form::<S>))
        .with_state(sim)
}

async fn state<S: SimControl>(State(sim): State<Arc<S>>) -> Json<S::State> {
    Json(sim.state())
}

async fn messages<S: SimControl>(State(sim): State<Arc<S>>) -> Json<Vec<S::Message>> {
    Json(sim.messages())
}

async fn faults<S: SimControl>(State(sim): State<Arc<S>>) -> Json<S::FaultsView> {
    Json(sim.faults())
}

async fn set_faults<S: SimControl>(State(sim): State<Arc<S>>, body: Bytes) -> Response {
    // Through a `Value`, so that only an object is taken (serde would also read a struct from an array).
    let parsed = serde_json::from_slice::<serde_json::Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|value| match value {
            serde_json::Value::Object(_) => Faults::deserialize(value).map_err(|e| e.to_string()),
            _ => Err("the faults body must be a JSON object".into()),
        });
    let faults = match parsed {
        Ok(faults) => faults,
        Err(e) => return reason(StatusCode::BAD_REQUEST, format!("invalid faults body: {e}")),
    };
    if let Err(why) = apply_faults(&*sim, faults) {
        return reason(StatusCode::BAD_REQUEST, why);
    }
    Json(sim.faults()).into_response()
}

/// Validates faults, puts them in force and logs them; the `Err` is the reason to answer.
fn apply_faults<S: SimControl>(sim: &S, faults: Faults) -> Result<(), String> {
    faults.validate().and_then(|()| sim.set_faults(faults.clone()))?;
    info!(
        latency_ms = faults.latency_ms,
        busy_rate = faults.busy_rate,
        reject_rate = faults.reject_rate,
        disconnect_rate = faults.disconnect_rate,
        down = faults.down,
        agency = faults.agency.as_deref(),
        "{} simulator faults set.",
        S::NAME
    );
    Ok(())
}

async fn reset<S: SimControl>(State(sim): State<Arc<S>>) -> StatusCode {
    reset_now(&*sim);
    StatusCode::NO_CONTENT
}

fn reset_now<S: SimControl>(sim: &S) {
    sim.reset();
    info!("{} simulator reset.", S::NAME);
}

/// `GET /`: the simulator page, one page of messages.
async fn page<S: SimControl>(State(sim): State<Arc<S>>, RawQuery(query): RawQuery) -> Response {
    let query = PageQuery::parse(query.as_deref());
    let to_json = |value: Result<serde_json::Value, serde_json::Error>| value.unwrap_or_default();
    let state = to_json(serde_json::to_value(sim.state()));
    let faults = to_json(serde_json::to_value(sim.faults()));
    let log = sim.messages();
    let window = page::window(log.len(), query.page, page::PAGE_SIZE);
    let messages = log[window.range.clone()].iter().rev().map(S::page_entry).collect();
    let data = PageData {
        name: S::NAME,
        state,
        faults,
        total: log.len(),
        messages,
        window,
    };
    let html = page::render(&data, &query);
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// `POST /_sim/faults/form`: the faults form; back to the page, or a `400` page naming the field.
async fn set_faults_form<S: SimControl>(
    State(sim): State<Arc<S>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let applied = match form {
        Ok(Form(pairs)) => page::faults_from_form(&pairs).and_then(|faults| apply_faults(&*sim, faults)),
        Err(rejection) => {
            let html = page::render_error(S::NAME, "faults not set", &rejection.body_text());
            return (rejection.status(), Html(html)).into_response();
        }
    };
    match applied {
        Ok(()) => Redirect::to("/").into_response(),
        Err(why) => {
            let html = page::render_error(S::NAME, "faults not set", &why);
            (StatusCode::BAD_REQUEST, Html(html)).into_response()
        }
    }
}

/// `POST /_sim/reset/form`: the reset form; back to the page.
async fn reset_form<S: SimControl>(State(sim): State<Arc<S>>) -> Redirect {
    reset_now(&*sim);
    Redirect::to("/")
}
