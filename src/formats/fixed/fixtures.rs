//! The shipped layouts, code maps and fixed-width fixtures, for the tests
//! of every module that reads them: one place names each file.

/// `schemas/layouts/cms-a-1.toml`.
pub(crate) const CMS_A: &str = include_str!("../../../schemas/layouts/cms-a-1.toml");
/// `schemas/layouts/cms-b-2.toml`.
pub(crate) const CMS_B: &str = include_str!("../../../schemas/layouts/cms-b-2.toml");
/// `mappings/codes.toml`.
pub(crate) const CODES: &str = include_str!("../../../mappings/codes.toml");
/// `mappings/code-maps/cms-b.toml`.
pub(crate) const CMS_B_MAP: &str = include_str!("../../../mappings/code-maps/cms-b.toml");

/// The `cms-a/1` samples of ICD §3, one per action.
pub(crate) const ISSUE: &[u8] = include_bytes!("../../../tests/fixtures/fixed/issue-sample.txt");
pub(crate) const MODIFY: &[u8] = include_bytes!("../../../tests/fixtures/fixed/modify-sample.txt");
pub(crate) const TERMINATE: &[u8] = include_bytes!("../../../tests/fixtures/fixed/terminate-sample.txt");
pub(crate) const CANCEL: &[u8] = include_bytes!("../../../tests/fixtures/fixed/cancel-sample.txt");
pub(crate) const SERVICE: &[u8] = include_bytes!("../../../tests/fixtures/fixed/service-sample.txt");

/// Broken `cms-a/1` messages.
pub(crate) const BAD_SHORT: &[u8] = include_bytes!("../../../tests/fixtures/fixed/bad-short-record.txt");
pub(crate) const BAD_BYTE: &[u8] = include_bytes!("../../../tests/fixtures/fixed/bad-byte-0x80.txt");
pub(crate) const BAD_FEB_30: &[u8] = include_bytes!("../../../tests/fixtures/fixed/bad-feb-30.txt");

/// The `cms-b/2` samples, one per action.
pub(crate) const CMS_B_ISSUE: &[u8] = include_bytes!("../../../tests/fixtures/cms-b/issue.txt");
pub(crate) const CMS_B_MODIFY: &[u8] = include_bytes!("../../../tests/fixtures/cms-b/modify.txt");
pub(crate) const CMS_B_TERMINATE: &[u8] = include_bytes!("../../../tests/fixtures/cms-b/terminate.txt");
pub(crate) const CMS_B_CANCEL: &[u8] = include_bytes!("../../../tests/fixtures/cms-b/cancel.txt");
pub(crate) const CMS_B_SERVICE: &[u8] = include_bytes!("../../../tests/fixtures/cms-b/service.txt");
