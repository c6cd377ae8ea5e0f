//! Reading an LEA order message (ICD §8): a JSON object with the action and the full current canonical
//! order in snake_case.
//!
//! The simulator checks only what identifies the message, the way an RMS keys its records:
//! - `action`: one of `ISSUE`, `MODIFY`, `SERVICE`, `TERMINATE`, `CANCEL`;
//! - `court_ori`: an ORI (9 characters `[A-Z0-9]`);
//! - `order_number`: 1 to 15 characters `[A-Z0-9-]`;
//! - `sequence`: a whole number of 1 or more;
//! - `order`: an object.
//!
//! Every other field is accepted as it is: the JSON Schema in `schemas/` is the broker's side. Errors name
//! the field, never its value.

use serde_json::Value;

use crate::common::{ACTIONS, OrderStep, is_order_number, is_ori};

/// Reads the message's identifying fields; the error is a reason for a `400`.
pub fn read_order(body: &[u8]) -> Result<OrderStep, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        // serde_json's message names a line and column, never the input's text.
        format!("the body is not JSON: {e}")
    })?;
    let Value::Object(fields) = value else {
        return Err("the body must be a JSON object".into());
    };
    let text = |name: &str| match fields.get(name) {
        None | Some(Value::Null) => Err(format!("{name} is missing")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{name} must be a string")),
    };
    let action = text("action")?;
    if !ACTIONS.contains(&action.as_str()) {
        return Err(format!("action must be one of {}", ACTIONS.join(", ")));
    }
    let court_ori = text("court_ori")?;
    if !is_ori(&court_ori) {
        return Err("court_ori must be 9 characters [A-Z0-9]".into());
    }
    let order_number = text("order_number")?;
    if !is_order_number(&order_number) {
        return Err("order_number must be 1 to 15 characters [A-Z0-9-]".into());
    }
    let sequence = match fields.get("sequence") {
        None | Some(Value::Null) => return Err("sequence is missing".into()),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|&n| n >= 1)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("sequence must be a whole number of 1 or more")?,
        Some(_) => return Err("sequence must be a number".into()),
    };
    match fields.get("order") {
        None | Some(Value::Null) => return Err("order is missing".into()),
        Some(Value::Object(_)) => {}
        Some(_) => return Err("order must be an object".into()),
    }
    Ok(OrderStep {
        court_ori,
        order_number,
        sequence,
        action,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A minimal ICD §8 body, for the simulator's tests.
    pub(crate) fn body(action: &str, sequence: u32) -> String {
        json!({
            "action": action,
            "court_ori": "CA034025J",
            "order_number": "24DV01234",
            "sequence": sequence,
            "order": {"order_type": "DV", "restrained_person": {"name": {"last": "DOE"}}},
            "sent_at": "2026-11-25T10:15:00-08:00"
        })
        .to_string()
    }

    /// The four identifying fields are read; other fields are accepted as they are.
    #[test]
    fn reads_the_identifying_fields() {
        let step = read_order(body("SERVICE", 3).as_bytes()).unwrap();
        assert_eq!(
            step,
            OrderStep {
                court_ori: "CA034025J".into(),
                order_number: "24DV01234".into(),
                sequence: 3,
                action: "SERVICE".into(),
            }
        );
    }

    /// Missing, mistyped or out-of-range identifying fields are refused, naming the field.
    #[test]
    fn refuses_bad_bodies() {
        let good: Value = serde_json::from_str(&body("ISSUE", 1)).unwrap();
        let with = |field: &str, value: Value| {
            let mut v = good.clone();
            if value.is_null() {
                v.as_object_mut().unwrap().remove(field);
            } else {
                v[field] = value;
            }
            read_order(v.to_string().as_bytes()).unwrap_err()
        };
        assert!(with("action", json!("DELETE")).contains("action must be"));
        assert!(with("action", Value::Null).contains("action is missing"));
        assert!(with("court_ori", json!(12)).contains("court_ori must be a string"));
        assert!(with("court_ori", json!("CA03")).contains("court_ori must be"));
        assert!(with("order_number", json!("24dv")).contains("order_number must be"));
        assert!(with("sequence", json!(0)).contains("sequence must be"));
        assert!(with("sequence", json!(1.5)).contains("sequence must be"));
        assert!(with("sequence", json!("1")).contains("sequence must be a number"));
        assert!(with("sequence", json!(u64::from(u32::MAX) + 1)).contains("sequence must be"));
        assert!(with("order", json!([])).contains("order must be an object"));
        assert!(with("order", Value::Null).contains("order is missing"));
        assert!(read_order(b"[1]").unwrap_err().contains("JSON object"));
        assert!(read_order(b"{").unwrap_err().contains("not JSON"));
    }
}
