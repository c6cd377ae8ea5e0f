//! The simulator page: a small HTML page at `GET /` on a partner simulator's control address (ICD §11),
//! for a tester with a browser. It shows the counters, the faults in force and the most recent messages,
//! and has forms to set the faults and to reset the simulator.
//!
//! Design note:
//! - One page for every simulator: it is rendered from the JSON the control API already answers (the
//!   [`state`](super::control::SimControl::state), [`faults`](super::control::SimControl::faults) and
//!   [`messages`](super::control::SimControl::messages) of a `SimControl`, turned into
//!   [`serde_json::Value`]), never from a simulator's own types. So a counter added to the state shows up
//!   without a change here.
//!   - Counters: every key of the state's `counters` object. A state entry whose values each carry a
//!     `counters` object (LEA's `agencies`) gets a table too, one row per entry.
//!   - Faults: the faults view, whatever its shape, as nested key/value tables.
//!   - Messages: newest first, [`PAGE_SIZE`] a page, `?page=N` links to newer and older pages and the
//!     total count. The columns are the entries' JSON keys, in the order serde_json gives them
//!     (alphabetical). Every value is cut at [`MAX_FIELD_CHARS`] characters, so a page stays small
//!     whatever the messages hold.
//! - Plain HTML and a little inline CSS, no script at all. `?refresh=N` (1 to 3600 seconds) adds a
//!   `<meta http-equiv="refresh">`; it is off by default, so a refresh never wipes a form being filled in.
//! - Every text taken from the state, the faults or the messages goes through [`escape`]; control
//!   characters are shown as their Unicode pictures (`␁`).
//! - The forms post `application/x-www-form-urlencoded` to their own endpoints (`POST /_sim/faults/form`,
//!   `POST /_sim/reset/form`, served by [`super::control`]), because `POST /_sim/faults` takes the ICD's
//!   JSON body and stays exactly as it is. [`faults_from_form`] reads the same fields as the JSON body: an
//!   empty or absent field is no fault, a checked `down` box sends `down=true`. The form is filled in with
//!   the faults in force (for LEA, the global ones), because a post replaces them all.

use std::fmt::Write as _;
use std::ops::Range;

use serde_json::{Map, Value};

use super::Faults;

/// How many messages one page shows.
pub const PAGE_SIZE: usize = 50;

/// How many characters of one message field the page shows; the rest is cut.
pub const MAX_FIELD_CHARS: usize = 300;

/// The longest `?refresh=` accepted, in seconds.
pub const MAX_REFRESH_SECS: u32 = 3600;

/// The form fields [`faults_from_form`] reads.
pub const FORM_FIELDS: [&str; 6] = [
    "latency_ms",
    "busy_rate",
    "reject_rate",
    "disconnect_rate",
    "down",
    "agency",
];

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text as a table cell shows it: at most `max` characters, then a note of how many were cut; control
/// characters replaced by their Unicode pictures; escaped.
pub fn cell_text(text: &str, max: usize) -> String {
    let shown: String = text.chars().take(max).map(visible).collect();
    let mut out = escape(&shown);
    let total = text.chars().count();
    if total > max {
        let _ = write!(out, "… <i>({} more characters)</i>", total - max);
    }
    out
}

/// A control character as its picture (U+2400 to U+2421), any other character as itself.
fn visible(c: char) -> char {
    match c {
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('?'),
        '\u{7f}' => '\u{2421}',
        _ => c,
    }
}

/// Which messages one page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The page shown, from 1 (the newest messages).
    pub number: usize,
    /// How many pages there are (at least 1, even with no messages).
    pub pages: usize,
    /// The page's messages as indices into the log, oldest first (show them in reverse).
    pub range: Range<usize>,
}

/// The page `requested` of a log of `total` messages, `size` a page, newest first. A page number out of
/// range is brought to the nearest page; a `size` of 0 counts as 1.
pub fn window(total: usize, requested: usize, size: usize) -> Window {
    let size = size.max(1);
    let pages = total.div_ceil(size).max(1);
    let number = requested.clamp(1, pages);
    let end = total - (number - 1) * size;
    Window {
        number,
        pages,
        range: end.saturating_sub(size)..end,
    }
}

/// What the page's query string asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// The page of messages, from 1.
    pub page: usize,
    /// Reload the page every so many seconds; `None` never.
    pub refresh: Option<u32>,
}

impl PageQuery {
    /// Reads `page` and `refresh` from a raw query string. A missing or unreadable value is the default
    /// (page 1, no refresh): a hand-edited URL still shows the page.
    pub fn parse(query: Option<&str>) -> Self {
        let mut parsed = Self { page: 1, refresh: None };
        for pair in query.unwrap_or_default().split('&') {
            match pair.split_once('=') {
                Some(("page", value)) => parsed.page = value.parse().unwrap_or(1),
                Some(("refresh", value)) => {
                    parsed.refresh = value.parse().ok().filter(|secs| (1..=MAX_REFRESH_SECS).contains(secs))
                }
                _ => {}
            }
        }
        parsed
    }

    /// The link to another page of messages, keeping the refresh.
    fn link(&self, page: usize) -> String {
        match self.refresh {
            Some(secs) => format!("/?page={page}&amp;refresh={secs}"),
            None => format!("/?page={page}"),
        }
    }
}

/// Reads the faults form: the fields of [`FORM_FIELDS`], each at most once. An empty or absent number is
/// 0, `down` is on when it is `true` or `on`, an empty `agency` is none. The `Err` names the field. The
/// result still has to pass [`Faults::validate`].
pub fn faults_from_form(pairs: &[(String, String)]) -> Result<Faults, String> {
    let mut faults = Faults::default();
    let mut seen = Vec::new();
    for (name, value) in pairs {
        let Some(field) = FORM_FIELDS.iter().find(|field| **field == name.as_str()) else {
            let shown: String = name.chars().take(40).collect();
            return Err(format!("unknown field {shown}"));
        };
        if seen.contains(field) {
            return Err(format!("{field} is given twice"));
        }
        seen.push(*field);
        let value = value.trim();
        match *field {
            "latency_ms" => faults.latency_ms = form_number(field, value)?,
            "busy_rate" => faults.busy_rate = form_number(field, value)?,
            "reject_rate" => faults.reject_rate = form_number(field, value)?,
            "disconnect_rate" => faults.disconnect_rate = form_number(field, value)?,
            "down" => {
                faults.down = match value {
                    "true" | "on" => true,
                    "" | "false" | "off" => false,
                    _ => return Err("down must be true or false".into()),
                }
            }
            _ => faults.agency = (!value.is_empty()).then(|| value.to_owned()),
        }
    }
    Ok(faults)
}

/// A number field of the form; empty is 0.
fn form_number<T: std::str::FromStr + Default>(field: &str, value: &str) -> Result<T, String> {
    if value.is_empty() {
        return Ok(T::default());
    }
    value.parse().map_err(|_| {
        if field == "latency_ms" {
            format!("{field} must be a whole number of milliseconds, 0 or more")
        } else {
            format!("{field} must be a number from 0.0 to 1.0")
        }
    })
}

/// What the page shows, as the control API's JSON.
#[derive(Debug, Clone)]
pub struct PageData<'a> {
    /// The simulator's name ("CLETS", "DOJ", "LEA").
    pub name: &'a str,
    /// The body of `GET /_sim/state`.
    pub state: Value,
    /// The body of `GET /_sim/faults`.
    pub faults: Value,
    /// How many messages the log holds.
    pub total: usize,
    /// The messages of the page shown, newest first.
    pub messages: Vec<Value>,
    /// Which page that is.
    pub window: Window,
}

/// The whole page.
pub fn render(data: &PageData<'_>, query: &PageQuery) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let title = format!("{} simulator", escape(data.name));
    head(&mut html, &title, query.refresh);
    let _ = write!(html, "<h1>{title}</h1>");
    links(&mut html, query);
    counters(&mut html, &data.state);
    html.push_str("<h2>Faults in force</h2>");
    json_value(&mut html, &data.faults);
    faults_form(&mut html, &form_defaults(&data.faults));
    reset_form(&mut html);
    messages(&mut html, data, query);
    html.push_str("</body></html>\n");
    html
}

/// A small page saying what went wrong with a form post, with a link back.
pub fn render_error(name: &str, what: &str, reason: &str) -> String {
    let mut html = String::new();
    let title = format!("{} simulator: {}", escape(name), escape(what));
    head(&mut html, &title, None);
    let _ = writeln!(
        html,
        "<h1>{title}</h1><p class=\"error\">{}</p><p><a href=\"/\">Back to the simulator page</a></p></body></html>",
        escape(reason)
    );
    html
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;margin:.5em 0}\
th,td{border:1px solid #bbb;padding:2px 6px;text-align:left;vertical-align:top}\
td.msg{font-family:monospace;word-break:break-all}form{margin:.5em 0}label{margin-right:1em}\
.note{color:#555}.error{color:#a00}";

fn head(html: &mut String, title: &str, refresh: Option<u32>) {
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
    );
    if let Some(secs) = refresh {
        let _ = write!(html, "<meta http-equiv=\"refresh\" content=\"{secs}\">");
    }
    let _ = write!(html, "<style>{STYLE}</style></head><body>");
}

fn links(html: &mut String, query: &PageQuery) {
    html.push_str(
        "<p>Control API: <a href=\"/_sim/state\">/_sim/state</a> · <a href=\"/_sim/messages\">/_sim/messages</a> \
         · <a href=\"/_sim/faults\">/_sim/faults</a> · ",
    );
    match query.refresh {
        Some(_) => {
            let _ = write!(html, "<a href=\"/?page={}\">stop refreshing</a></p>", query.page);
        }
        None => {
            let _ = write!(
                html,
                "<a href=\"/?page={}&amp;refresh=5\">refresh every 5 s</a></p>",
                query.page
            );
        }
    }
}

/// The `counters` object, then the counters of each entry of a keyed collection (LEA's `agencies`).
fn counters(html: &mut String, state: &Value) {
    html.push_str("<h2>Counters</h2>");
    match state.get("counters").and_then(Value::as_object) {
        Some(counters) => {
            html.push_str("<table class=\"counters\">");
            for (name, value) in counters {
                let _ = write!(html, "<tr><th>{}</th><td>{}</td></tr>", escape(name), scalar(value));
            }
            html.push_str("</table>");
        }
        None => html.push_str("<p>none</p>"),
    }
    let Some(state) = state.as_object() else {
        return;
    };
    for (name, entries) in state {
        if let Some(entries) = counted_entries(entries) {
            counters_by(html, name, &entries);
        }
    }
}

/// The entries of an object whose values each carry a `counters` object, with those counters.
fn counted_entries(value: &Value) -> Option<Vec<(&String, &Map<String, Value>)>> {
    let entries = value.as_object().filter(|entries| !entries.is_empty())?;
    entries
        .iter()
        .map(|(key, entry)| Some((key, entry.get("counters")?.as_object()?)))
        .collect()
}

fn counters_by(html: &mut String, name: &str, entries: &[(&String, &Map<String, Value>)]) {
    let columns = union_keys(entries.iter().map(|(_, counters)| *counters));
    let _ = write!(
        html,
        "<h3>Counters by {}</h3><table class=\"counters-by\"><tr><th></th>",
        escape(name)
    );
    for column in &columns {
        let _ = write!(html, "<th>{}</th>", escape(column));
    }
    html.push_str("</tr>");
    for (key, counters) in entries {
        let _ = write!(html, "<tr><th>{}</th>", escape(key));
        for column in &columns {
            let _ = write!(
                html,
                "<td>{}</td>",
                counters.get(column).map(scalar).unwrap_or_default()
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
}

/// The keys of several objects, each once, in first-seen order.
fn union_keys<'a>(objects: impl Iterator<Item = &'a Map<String, Value>>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for object in objects {
        for key in object.keys() {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    keys
}

/// A JSON value as nested key/value tables; an empty object or array is "none".
fn json_value(html: &mut String, value: &Value) {
    match value {
        Value::Object(object) if object.is_empty() => html.push_str("none"),
        Value::Object(object) => {
            html.push_str("<table>");
            for (key, value) in object {
                let _ = write!(html, "<tr><th>{}</th><td>", escape(key));
                json_value(html, value);
                html.push_str("</td></tr>");
            }
            html.push_str("</table>");
        }
        Value::Array(items) if items.is_empty() => html.push_str("none"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    html.push_str(", ");
                }
                json_value(html, item);
            }
        }
        other => html.push_str(&scalar(other)),
    }
}

/// A scalar as text (a string without quotes, `null` as nothing), cut and escaped; an object or array as
/// its compact JSON, cut and escaped.
fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => cell_text(text, MAX_FIELD_CHARS),
        other => cell_text(&other.to_string(), MAX_FIELD_CHARS),
    }
}

/// The faults to fill the form with: the view itself when it is a faults body (CLETS, DOJ), else its
/// `global` part (LEA), else none.
fn form_defaults(view: &Value) -> Faults {
    serde_json::from_value(view.clone())
        .or_else(|_| serde_json::from_value(view.get("global").cloned().unwrap_or_default()))
        .unwrap_or_default()
}

fn faults_form(html: &mut String, current: &Faults) {
    let _ = write!(
        html,
        "<h2>Set faults</h2><form method=\"post\" action=\"/_sim/faults/form\">\
         <p class=\"note\">A post replaces the faults it scopes to (ICD §11); an empty field is no fault.</p><p>\
         <label>latency_ms <input name=\"latency_ms\" type=\"number\" min=\"0\" step=\"1\" value=\"{}\"></label>",
        current.latency_ms
    );
    for (name, rate) in [
        ("busy_rate", current.busy_rate),
        ("reject_rate", current.reject_rate),
        ("disconnect_rate", current.disconnect_rate),
    ] {
        let _ = write!(
            html,
            "<label>{name} <input name=\"{name}\" type=\"number\" min=\"0\" max=\"1\" step=\"any\" \
             value=\"{rate}\"></label>"
        );
    }
    let checked = if current.down { " checked" } else { "" };
    let _ = write!(
        html,
        "<label><input name=\"down\" type=\"checkbox\" value=\"true\"{checked}> down</label></p>\
         <p><label>agency <input name=\"agency\" type=\"text\" maxlength=\"9\" size=\"10\" value=\"{}\"></label>\
         <span class=\"note\">LEA only: an ORI scopes the faults to that agency; CLETS and DOJ ignore it.</span></p>\
         <p><button type=\"submit\">Set faults</button></p></form>",
        escape(current.agency.as_deref().unwrap_or_default())
    );
}

fn reset_form(html: &mut String) {
    html.push_str(
        "<form method=\"post\" action=\"/_sim/reset/form\"><button type=\"submit\">Reset</button> \
         <span class=\"note\">forgets records, messages, counters and faults</span></form>",
    );
}

fn messages(html: &mut String, data: &PageData<'_>, query: &PageQuery) {
    let window = &data.window;
    let _ = write!(
        html,
        "<h2>Messages</h2><p>{} messages, newest first; page {} of {}.",
        data.total, window.number, window.pages
    );
    if window.number > 1 {
        let _ = write!(html, " <a href=\"{}\">newer</a>", query.link(window.number - 1));
    }
    if window.number < window.pages {
        let _ = write!(html, " <a href=\"{}\">older</a>", query.link(window.number + 1));
    }
    html.push_str("</p>");
    if data.messages.is_empty() {
        return;
    }
    let objects: Vec<Map<String, Value>> = data
        .messages
        .iter()
        .map(|message| match message {
            Value::Object(object) => object.clone(),
            other => Map::from_iter([("message".to_owned(), other.clone())]),
        })
        .collect();
    let columns = union_keys(objects.iter());
    html.push_str("<table class=\"messages\"><tr>");
    for column in &columns {
        let _ = write!(html, "<th>{}</th>", escape(column));
    }
    html.push_str("</tr>");
    for message in &objects {
        html.push_str("<tr>");
        for column in &columns {
            let _ = write!(
                html,
                "<td class=\"msg\">{}</td>",
                message.get(column).map(scalar).unwrap_or_default()
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(form: &[(&str, &str)]) -> Vec<(String, String)> {
        form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// The five characters HTML gives a meaning to are escaped; other text passes unchanged.
    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("EPO.CA034025J.é"), "EPO.CA034025J.é");
        assert_eq!(escape(""), "");
    }

    /// A long field is cut at the limit with a count of what was cut, escaped, control characters shown.
    #[test]
    fn cells_are_cut_escaped_and_visible() {
        assert_eq!(cell_text("<b>", 10), "&lt;b&gt;");
        assert_eq!(cell_text("abcdef", 3), "abc… <i>(3 more characters)</i>");
        assert_eq!(cell_text("a\u{1}\u{7f}", 10), "a\u{2401}\u{2421}");
        assert_eq!(cell_text("ééé", 2), "éé… <i>(1 more characters)</i>");
    }

    /// Pages count from the newest messages; the last page holds the oldest, partly filled; out-of-range
    /// page numbers come back into range; an empty log has one empty page.
    #[test]
    fn paging_maths() {
        assert_eq!(
            window(120, 1, 50),
            Window {
                number: 1,
                pages: 3,
                range: 70..120
            }
        );
        assert_eq!(window(120, 2, 50).range, 20..70);
        assert_eq!(window(120, 3, 50).range, 0..20);
        assert_eq!(window(120, 9, 50).number, 3);
        assert_eq!(window(120, 0, 50).number, 1);
        assert_eq!(
            window(0, 1, 50),
            Window {
                number: 1,
                pages: 1,
                range: 0..0
            }
        );
        assert_eq!(window(100, 2, 50).range, 0..50);
        assert_eq!(window(101, 3, 50).range, 0..1);
        assert_eq!(window(3, 1, 0).pages, 3);
    }

    /// The query's page and refresh are read; anything unreadable falls back to the defaults.
    #[test]
    fn page_query_is_read_leniently() {
        assert_eq!(
            PageQuery::parse(Some("page=3&refresh=5")),
            PageQuery {
                page: 3,
                refresh: Some(5)
            }
        );
        let default = PageQuery { page: 1, refresh: None };
        assert_eq!(PageQuery::parse(None), default);
        assert_eq!(PageQuery::parse(Some("page=x&refresh=0")), default);
        assert_eq!(PageQuery::parse(Some("refresh=99999&other")), default);
    }

    /// The form's fields become a faults body; empty numbers are 0, an empty agency is none.
    #[test]
    fn faults_form_is_read() {
        let form = pairs(&[
            ("latency_ms", "250"),
            ("busy_rate", "0.5"),
            ("reject_rate", ""),
            ("disconnect_rate", " 0.1 "),
            ("down", "true"),
            ("agency", ""),
        ]);
        assert_eq!(
            faults_from_form(&form).unwrap(),
            Faults {
                latency_ms: 250,
                busy_rate: 0.5,
                disconnect_rate: 0.1,
                down: true,
                ..Faults::default()
            }
        );
        assert_eq!(faults_from_form(&[]).unwrap(), Faults::default());
        let scoped = faults_from_form(&pairs(&[("agency", "CA0341100")])).unwrap();
        assert_eq!(scoped.agency.as_deref(), Some("CA0341100"));
    }

    /// A bad form is refused with the field's name: unreadable numbers, unknown or repeated fields.
    #[test]
    fn bad_faults_form_names_the_field() {
        for (form, field) in [
            (vec![("latency_ms", "-1")], "latency_ms"),
            (vec![("latency_ms", "1.5")], "latency_ms"),
            (vec![("busy_rate", "lots")], "busy_rate"),
            (vec![("down", "maybe")], "down"),
            (vec![("reject_rate", "0.1"), ("reject_rate", "0.2")], "reject_rate"),
            (vec![("latency", "5")], "latency"),
        ] {
            let err = faults_from_form(&pairs(&form)).unwrap_err();
            assert!(err.contains(field), "{err}");
        }
        // Read but out of range: left to `Faults::validate`, which names the field too.
        let wide = faults_from_form(&pairs(&[("busy_rate", "2")])).unwrap();
        assert!(wide.validate().unwrap_err().contains("busy_rate"));
        let nan = faults_from_form(&pairs(&[("reject_rate", "NaN")])).unwrap();
        assert!(nan.validate().unwrap_err().contains("reject_rate"));
    }

    fn data(total: usize, page: usize) -> PageData<'static> {
        let all: Vec<Value> = (1..=total)
            .map(|i| json!({"at": format!("t{i}"), "request": format!("<REQ {i}>"), "reply": null}))
            .collect();
        let window = window(total, page, PAGE_SIZE);
        PageData {
            name: "CLETS",
            state: json!({
                "counters": {"received": 7, "accepted": 5},
                "agencies": {"CA0341100": {"counters": {"received": 2}, "records": []}},
                "records": [],
            }),
            faults: json!({
                "latency_ms": 0, "busy_rate": 0.25, "reject_rate": 0.0, "disconnect_rate": 0.0, "down": true
            }),
            total,
            messages: all[window.range.clone()].iter().rev().cloned().collect(),
            window,
        }
    }

    /// The page shows every counter, per-entry counters, the faults (filled into the form), the messages
    /// escaped and newest first, and links to the other pages.
    #[test]
    fn page_shows_counters_faults_and_messages() {
        let html = render(&data(60, 1), &PageQuery::parse(None));
        assert!(html.contains("<title>CLETS simulator</title>"));
        assert!(html.contains("<tr><th>received</th><td>7</td></tr>"));
        assert!(html.contains("<tr><th>accepted</th><td>5</td></tr>"));
        assert!(html.contains("<h3>Counters by agencies</h3>"));
        assert!(html.contains("<tr><th>CA0341100</th><td>2</td></tr>"));
        assert!(html.contains("name=\"busy_rate\" type=\"number\" min=\"0\" max=\"1\" step=\"any\" value=\"0.25\""));
        assert!(html.contains("value=\"true\" checked"));
        assert!(html.contains("60 messages, newest first; page 1 of 2."));
        assert!(html.contains("&lt;REQ 60&gt;") && html.contains("&lt;REQ 11&gt;"));
        assert!(!html.contains("&lt;REQ 10&gt;") && !html.contains("<REQ"));
        assert!(html.find("REQ 60").unwrap() < html.find("REQ 59").unwrap());
        assert!(html.contains("<a href=\"/?page=2\">older</a>") && !html.contains(">newer<"));
        assert!(!html.contains("http-equiv"));

        let html = render(&data(60, 2), &PageQuery::parse(Some("page=2&refresh=5")));
        assert!(html.contains("&lt;REQ 10&gt;") && html.contains("&lt;REQ 1&gt;"));
        assert!(!html.contains("&lt;REQ 11&gt;"));
        assert!(html.contains("<a href=\"/?page=1&amp;refresh=5\">newer</a>") && !html.contains(">older<"));
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
    }

    /// LEA's faults view fills the form from its global part; per-agency faults are shown as a table.
    #[test]
    fn lea_faults_view_fills_the_form_from_global() {
        let view = json!({
            "global": {"latency_ms": 40, "busy_rate": 0.0, "reject_rate": 0.0, "disconnect_rate": 0.0, "down": false},
            "agencies": {"CA0341100": {
                "latency_ms": 0, "busy_rate": 0.5, "reject_rate": 0.0, "disconnect_rate": 0.0, "down": false
            }},
        });
        assert_eq!(form_defaults(&view).latency_ms, 40);
        let mut html = String::new();
        json_value(&mut html, &view);
        assert!(html.contains("<th>CA0341100</th>") && html.contains("<th>busy_rate</th><td>0.5</td>"));
        assert_eq!(form_defaults(&json!("odd")), Faults::default());
    }

    /// The error page names the reason, escaped.
    #[test]
    fn error_page_escapes_the_reason() {
        let html = render_error("LEA", "faults not set", "unknown field <x>");
        assert!(html.contains("unknown field &lt;x&gt;"));
        assert!(html.contains("<a href=\"/\">"));
    }
}
