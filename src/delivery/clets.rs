//! The CLETS/CARPOS partner (ICD §6): translate, send over framed TCP,
//! classify the answer.
//!
//! - `ACK` → accepted, with the record's NIC and FCN; an `EPO`'s NIC is
//!   kept for the order's later keys.
//! - `REJ` → permanent: `PARTNER_REJECTED` and a dead letter.
//! - `BSY`, a timeout or a connection error → transient: retried later with
//!   the same MCN.

use chrono::Utc;
use porter_adapters::clets::client::CletsClient;
use porter_adapters::clets::{CletsError, CletsReply};
use std::sync::Arc;

use super::PartnerAdapter;
use super::circuit::{Circuits, Signal};
use super::retry::RetryPolicy;
use crate::mapping::clets::CletsTables;
use crate::model::{Action, ErrorCode, PartnerId, PartnerRecordId};
use crate::store::{DeliveryJob, DeliveryOutcome, DeliveryResult, PartnerAttempt};
use crate::translate::clets::translate;

/// Porter's CLETS adapter.
pub struct CletsPartner {
    pub client: CletsClient,
    pub tables: Arc<CletsTables>,
    pub retry: RetryPolicy,
    /// CLETS's circuit breaker: an answer (ACK or REJ) closes it, a BSY or
    /// a transport failure counts towards opening it.
    pub circuits: Arc<Circuits>,
}

impl PartnerAdapter for CletsPartner {
    fn partner(&self) -> PartnerId {
        PartnerId::Clets
    }

    async fn attempt(&self, job: DeliveryJob) -> DeliveryResult {
        let at = Utc::now();
        let translation = match translate(&job.order, job.nic.as_deref(), job.revision, &self.tables) {
            Ok(t) => t,
            Err(errors) => {
                let unknown = errors.iter().any(|e| e.code == ErrorCode::UnknownOrder);
                let reason = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                let outcome = if unknown {
                    DeliveryOutcome::DeadLettered {
                        code: ErrorCode::UnknownOrder,
                        reason,
                    }
                } else {
                    DeliveryOutcome::Rejected {
                        reason,
                        warnings: Vec::new(),
                    }
                };
                let attempt = PartnerAttempt {
                    at,
                    request: Vec::new(),
                    image: None,
                    response: None,
                    error: Some("not translatable".into()),
                };
                return DeliveryResult {
                    delivery_id: job.id,
                    lease_token: job.lease_token,
                    attempt,
                    outcome,
                };
            }
        };
        let request = translation.request.into_text().into_bytes();
        let sent = self.client.send(&request).await;
        let started = at;
        metrics::histogram!("porter_partner_request_seconds", "partner" => "CLETS")
            .record((Utc::now() - started).num_milliseconds() as f64 / 1000.0);
        let signal = match &sent {
            Ok(CletsReply::Bsy { .. }) => Some(Signal::Transient),
            Ok(_) => Some(Signal::Success),
            Err(CletsError::InvalidRequest(_)) => None,
            Err(_) => Some(Signal::Transient),
        };
        if let Some(signal) = signal {
            self.circuits
                .record(&PartnerId::Clets, signal, std::time::Instant::now());
        }
        let (response, error, outcome) = match sent {
            Ok(reply) => {
                let text = reply.to_frame_text();
                let outcome = match reply {
                    CletsReply::Ack { nic, fcn, .. } => DeliveryOutcome::Accepted {
                        record_ids: vec![
                            PartnerRecordId {
                                scheme: "NIC".into(),
                                id: nic.clone(),
                            },
                            PartnerRecordId {
                                scheme: "FCN".into(),
                                id: fcn,
                            },
                        ],
                        nic: (job.action == Action::Issue).then_some(nic),
                        warnings: translation.warnings,
                    },
                    CletsReply::Rej { code, message, .. } => {
                        tracing::error!(partner = "CLETS", delivery = job.id, code = %code, "CLETS rejected the message; it is now a dead letter for operators.");
                        DeliveryOutcome::Rejected {
                            reason: format!("{code}: {message}"),
                            warnings: translation.warnings,
                        }
                    }
                    CletsReply::Bsy { message, .. } => {
                        self.retry.after_transient(&job, format!("BSY: {message}"), None)
                    }
                };
                (Some(text), None, outcome)
            }
            Err(CletsError::InvalidRequest(reason)) => {
                let outcome = DeliveryOutcome::Rejected {
                    reason: format!("not sendable to CLETS: {reason}"),
                    warnings: translation.warnings,
                };
                (None, Some(reason), outcome)
            }
            Err(e) => {
                let reason = e.to_string();
                (
                    None,
                    Some(reason.clone()),
                    self.retry.after_transient(&job, reason, None),
                )
            }
        };
        DeliveryResult {
            delivery_id: job.id,
            lease_token: job.lease_token,
            attempt: PartnerAttempt {
                at,
                request,
                image: None,
                response,
                error,
            },
            outcome,
        }
    }
}
