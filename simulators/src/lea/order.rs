//! Reading an LEA order message (ICD §8): a JSON object with the action and the full current canonical
//! order in snake_case.
//!
//! Two steps, both answered `422` with their reason when they refuse:
//! 1. [`OrderSchema::read`] validates the body against `schemas/lea-order.schema.json` (built in,
//!    compiled once when the simulator starts) with the `jsonschema` crate, independently of Porter's
//!    writer. Formats (`date`, `date-time`, `uri`) are checked too. The reason names, for each of the
//!    first [`MAX_REASON_ERRORS`] errors, the instance path and the keyword that failed, with the
//!    validator's message masked, so it never quotes the offending value:
//!    `at /order/order/order_type: value is not one of ... (enum)`.
//! 2. [`identify`] reads what identifies the message, the way an RMS keys its records: `action`,
//!    `court_ori`, `order_number`, `sequence` (a whole number of 1 or more that fits 32 bits, which the
//!    schema leaves unbounded) and `order` (an object).
//!
//! Errors name the field, never its value.

use serde_json::Value;

use crate::common::{ACTIONS, OrderStep, is_order_number, is_ori};

/// `schemas/lea-order.schema.json`, built in.
const SCHEMA: &str = include_str!("../../../schemas/lea-order.schema.json");

/// How many of the validator's errors make a reason.
pub const MAX_REASON_ERRORS: usize = 3;

/// The LEA order schema, compiled.
#[derive(Debug)]
pub struct OrderSchema {
    validator: jsonschema::Validator,
}

impl OrderSchema {
    /// Compiles the built-in schema (JSON Schema 2020-12, formats asserted, no remote references).
    pub fn compile() -> anyhow::Result<Self> {
        let schema: Value = serde_json::from_str(SCHEMA)?;
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| anyhow::anyhow!("schemas/lea-order.schema.json does not compile: {e}"))?;
        Ok(Self { validator })
    }

    /// Validates the body against the schema, then reads its identifying fields; the error is a reason
    /// for a `422`.
    pub fn read(&self, body: &[u8]) -> Result<OrderStep, String> {
        let value = parse(body)?;
        let errors: Vec<String> = self
            .validator
            .iter_errors(&value)
            .take(MAX_REASON_ERRORS)
            .map(|e| {
                let path = e.instance_path().as_str();
                let path = if path.is_empty() { "/" } else { path };
                format!("at {path}: {} ({})", e.masked(), e.kind().keyword())
            })
            .collect();
        if !errors.is_empty() {
            return Err(format!(
                "not valid against lea-order.schema.json: {}",
                errors.join("; ")
            ));
        }
        identify(&value)
    }
}

fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's message names a line and column, never the input's text.
        format!("the body is not JSON: {e}")
    })
}

/// Reads the message's identifying fields from a body without validating it against the schema.
pub fn read_order(body: &[u8]) -> Result<OrderStep, String> {
    identify(&parse(body)?)
}

/// Reads the message's identifying fields from a parsed body.
pub fn identify(value: &Value) -> Result<OrderStep, String> {
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
            .ok_or("sequence must be a whole number from 1 to 4294967295")?,
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

    /// The ICD §8 sample body (`schemas/samples/lea-order.json`, valid against
    /// `schemas/lea-order.schema.json`) with this action and sequence.
    pub(crate) fn value(action: &str, sequence: u32) -> Value {
        let mut value: Value = serde_json::from_str(include_str!("../../../schemas/samples/lea-order.json"))
            .expect("the LEA sample is JSON");
        for at in ["", "/order"] {
            let message = value.pointer_mut(at).expect("the sample's message");
            message["action"] = action.into();
            message["sequence"] = sequence.into();
        }
        value
    }

    /// [`value`] as text.
    pub(crate) fn body(action: &str, sequence: u32) -> String {
        value(action, sequence).to_string()
    }

    fn schema() -> OrderSchema {
        OrderSchema::compile().unwrap()
    }

    /// The built-in schema compiles, and a full body of every action passes it and is read.
    #[test]
    fn valid_bodies_are_read() {
        let schema = schema();
        for action in ACTIONS {
            let step = schema.read(body(action, 3).as_bytes()).unwrap();
            assert_eq!(
                step,
                OrderStep {
                    court_ori: "CA034025J".into(),
                    order_number: "24DV01234".into(),
                    sequence: 3,
                    action: action.into(),
                }
            );
        }
    }

    /// Each kind of schema violation is refused with the instance path and the keyword, never the
    /// offending value: a wrong type, a missing required field, an unknown action, a bad format, an
    /// unknown field.
    #[test]
    fn schema_violations_name_path_and_keyword() {
        let schema = schema();
        let refuse = |change: &dyn Fn(&mut Value), expected: &[&str]| {
            let mut v = value("ISSUE", 1);
            change(&mut v);
            let why = schema.read(v.to_string().as_bytes()).unwrap_err();
            for part in expected {
                assert!(why.contains(part), "{part:?} not in {why:?}");
            }
            assert!(
                !why.contains("DOE") && !why.contains("1985") && !why.contains("SMITH"),
                "{why}"
            );
            why
        };
        refuse(&|v| v["sequence"] = json!("1"), &["at /sequence:", "(type)"]);
        refuse(
            &|v| v["order"]["restrained_person"]["name"]["last"] = json!(12),
            &["at /order/restrained_person:", "(oneOf)"],
        );
        refuse(
            &|v| {
                v["order"]["order"].as_object_mut().unwrap().remove("order_type");
            },
            &[
                "at /order/order:",
                "\"order_type\" is a required property",
                "(required)",
            ],
        );
        refuse(
            &|v| {
                v.as_object_mut().unwrap().remove("image");
            },
            &["at /:", "(required)"],
        );
        refuse(&|v| v["action"] = json!("DELETE"), &["at /action:", "(enum)"]);
        refuse(
            &|v| v["order"]["order"]["judicial_officer"] = json!(["SMITH"]),
            &["at /order/order/judicial_officer:", "(type)"],
        );
        refuse(&|v| v["sent_at"] = json!("1985-02-14T25:00:00Z"), &["at /sent_at:"]);
        refuse(&|v| v["nickname"] = json!("DOE"), &["(additionalProperties)"]);
        assert!(schema.read(b"{").unwrap_err().contains("not JSON"));
    }

    /// A sequence the schema allows but that does not fit 32 bits is refused when reading the ids.
    #[test]
    fn sequence_must_fit_32_bits() {
        let mut v = value("ISSUE", 1);
        v["sequence"] = json!(u64::from(u32::MAX) + 1);
        let why = OrderSchema::compile()
            .unwrap()
            .read(v.to_string().as_bytes())
            .unwrap_err();
        assert!(why.contains("sequence must be a whole number"), "{why}");
    }

    /// Missing, mistyped or out-of-range identifying fields are refused, naming the field.
    #[test]
    fn refuses_bad_bodies() {
        let good = value("ISSUE", 1);
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
