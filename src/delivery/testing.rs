//! Jobs for the HTTP adapters' tests, built from the normative samples in
//! `schemas/samples/` (one order's lifecycle).

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::config::RetryConfig;
use crate::formats::xml::{XmlLimits, read_order};
use crate::model::{Action, OrderImage, OrderMessage, PartnerId};
use crate::order::lifecycle::apply_message;
use crate::store::DeliveryJob;

use super::retry::RetryPolicy;

/// The sample message for `action`, as read.
pub fn sample(action: Action) -> OrderMessage {
    let bytes: &[u8] = match action {
        Action::Issue => include_bytes!("../../schemas/samples/issue.xml"),
        Action::Modify => include_bytes!("../../schemas/samples/modify.xml"),
        Action::Service => include_bytes!("../../schemas/samples/service.xml"),
        Action::Terminate => include_bytes!("../../schemas/samples/terminate.xml"),
        Action::Cancel => include_bytes!("../../schemas/samples/cancel.xml"),
    };
    let parsed = read_order(bytes, &XmlLimits::default());
    assert!(parsed.is_ok(), "{:?}", parsed.errors);
    parsed.message
}

/// The order as it stands after `action`'s sample, as the store applies it
/// ([`apply_message`]) to an order that the MODIFY sample left: ISSUE and
/// MODIFY replace the order; the others add their fields to it and take
/// their header.
pub fn state_after(action: Action) -> OrderMessage {
    apply_message(Some(sample(Action::Modify)), action, sample(action))
}

/// A small PDF image whose hash matches.
pub fn image() -> OrderImage {
    let data = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n".to_vec();
    OrderImage::new("application/pdf", hex::encode(Sha256::digest(&data)), data)
}

/// A delivery of `action`'s sample to `partner`.
pub fn job(partner: PartnerId, action: Action) -> DeliveryJob {
    let order = sample(action);
    let now = Utc::now();
    DeliveryJob {
        id: 7,
        lease_token: 0,
        partner,
        court_ori: order.court_ori.to_string(),
        message_id: format!("cms-{}", action.name().to_lowercase()),
        order_number: order.order_number().unwrap_or_default().to_string(),
        sequence: order.sequence.unwrap_or(1),
        action,
        revision: 0,
        state: state_after(action),
        order,
        nic: None,
        attempts: 0,
        first_attempt_at: None,
        created_at: now,
        key_created_at: now,
    }
}

/// A retry policy with short steps, so that a `Retry-After` stands out.
pub fn retry(partner: &'static str) -> RetryPolicy {
    RetryPolicy::new(
        partner,
        &RetryConfig {
            min_ms: 100,
            max_ms: 1_000,
            max_age_secs: 3_600,
        },
    )
}
