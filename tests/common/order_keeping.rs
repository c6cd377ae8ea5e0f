//! What the tests read from the DOJ and LEA simulators' state to show that
//! each order's messages reached a partner in sequence (ICD §5, §11).

use serde_json::Value;

/// The sequences an HTTP partner (DOJ, or one LEA agency) applied for
/// `order`, in the order it applied them: its records are kept oldest first.
pub fn applied_sequences(records: &Value, order: &str) -> Vec<u64> {
    records
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|r| r["order_number"] == order)
        .filter_map(|r| r["sequence"].as_u64())
        .collect()
}

/// Asserts the ICD §11 order-keeping counters of an HTTP simulator (or of
/// one LEA agency): nothing arrived at or below a sequence already applied
/// (`out_of_order`), nothing skipped a sequence (`gaps`), nothing was
/// applied twice (`double_records`).
pub fn assert_in_order(counters: &Value, who: &str) {
    assert_eq!(counters["out_of_order"], 0, "{who}: out_of_order in {counters}");
    assert_eq!(counters["gaps"], 0, "{who}: gaps in {counters}");
    assert_eq!(counters["double_records"], 0, "{who}: double_records in {counters}");
}
