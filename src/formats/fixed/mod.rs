//! Fixed-width order messages (ICD §3), read through declarative layouts.
//!
//! # Design note
//!
//! A court's CMS writes an order message as fixed-width ASCII records. Which
//! record types exist, where each field sits, how dates are written and which
//! records each action carries differ between CMS vendors, so none of it is
//! code: it is a **layout**, a TOML file under `schemas/layouts/` that Porter
//! reads at start ([`Layout::load`]). `cms-a/1`
//! (`schemas/layouts/cms-a-1.toml`) is the ICD's layout. A court whose CMS
//! writes another layout is onboarded with a new file and a court entry, with
//! no rebuild.
//!
//! ## Layout file format
//!
//! Every table refuses unknown keys, so a typo is an error at start, not a
//! silently ignored column.
//!
//! ```toml
//! name = "cms-a/1"                  # as configuration and `x-por-layout` spell it
//! description = "…"                 # optional, for people
//! record_length = 200               # data bytes per record, terminator excluded
//! terminators = ["LF", "CRLF"]      # accepted terminators; the last record may lack one
//! record_type = { start = 1, length = 1 }   # where each record carries its type
//! code_map = "cms-b"                # optional: the default code-map set (a `name` in
//!                                   # mappings/code-maps/) for this layout's codes;
//!                                   # absent: the codes are canonical
//!
//! [[record_order]]                  # the records of some actions' messages, in order
//! actions = ["ISSUE", "MODIFY"]     # spelled-out actions
//! records = [ { type = "O", min = 1, max = 1 }, { type = "P", min = 1, max = 9 } ]
//!
//! [[records]]                       # one record type
//! type = "P"                        # its code in the record_type columns
//! description = "…"                 # optional
//! container = "protected_persons[]" # optional: order | restrained_person |
//!                                   # protected_persons[] | order.service
//! fields = [
//!   { field = "protected_persons[].name.last", start = 2, length = 30, type = "text" },
//!   { field = "protected_persons[].birth_date", start = 74, length = 8, type = "date", pattern = "CCYYMMDD" },
//!   { name = "filler", start = 84, length = 117, type = "filler" },
//! ]
//! ```
//!
//! **Columns** are 1-based byte columns, `start` plus `length`. At load, every
//! field must lie inside the record and no two fields (nor the record-type
//! columns) may overlap; columns not named are ignored, like filler.
//!
//! **`field`** is the canonical field path the column fills, as in errors and
//! the model's serde names: `court_ori`, `action`, `sequence`, `order.*`,
//! `order.service.*`, `restrained_person.*` (with `.name.*`, `.residence.*`,
//! `.driver_license.*`) and `protected_persons[].*`. `[]` means "the n-th
//! record of this type" (0-based), so list fields belong in a repeatable
//! record whose `container` is `protected_persons[]`. Each canonical field is
//! filled by one record type only.
//!
//! **Field types** (`type`) and their attributes:
//!
//! | type | reads | attributes |
//! |---|---|---|
//! | `text`, `code` | left-justified, space-padded text; spaces trimmed; blank = none | `join`, `max_length` |
//! | `digits` | text that must be digits (height, ZIP), kept as text | `max_length` |
//! | `number` | an unsigned number (sequence) | `zero_padded` (every column a digit) |
//! | `date` | a date | `pattern` (`CCYYMMDD`, `MMDDYYYY`, `MM/DD/CCYY`, …) |
//! | `time` | the time of the record's `date` field with the same `field` | `pattern` (`HHMM`), `default` (used when the date is given and the time is blank) |
//! | `datetime` | date and time in one field | `pattern` (`CCYYMMDDHHMM`) |
//! | `codes` | repeated codes of `width` bytes; blank slots skipped | `width` |
//! | `flag` | yes/no | `yes`, `no` (default `Y`, `N`) |
//! | `action` | the action | `codes` (wire code → `ISSUE` …; default the ICD's `IS MD TM CX SV`) |
//! | `line_number` | position of a repeated record: must be 1, 2, 3, … in order | |
//! | `filler` | nothing (must still be ASCII) | |
//!
//! A date-time canonical field (`order.expiration`, `order.service.served_at`)
//! is one `datetime` field, or a `date` plus a `time` field in one record. A
//! blank date leaves it none (the time is then ignored); a blank time takes
//! the `default`, or is `MISSING` when there is none. `join = " "` makes each
//! repeated record append its trimmed text (blank lines skipped), and
//! `max_length` bounds the joined text (`TOO_LONG`): that is how the
//! `cms-a/1` M lines build `order.condition_text`.
//!
//! **Record order.** Each `[[record_order]]` lists consecutive groups of
//! `min`–`max` records of one type. Every action has at most one entry; an
//! action with none is refused (`INVALID_FORMAT` on `action`). Each entry
//! starts with the one record type holding the `action` field. The largest
//! sum of `max` over the entries bounds how many records a message may hold.
//!
//! ## Reading rules ([`Layout::read_order`])
//!
//! - Input is bytes; columns are byte columns. Records end with an accepted
//!   terminator (the last may have none). A record of any other length is
//!   `INVALID_FORMAT` at `record:column` (the first missing or extra column);
//!   its values are still read, but its field errors are not reported, since
//!   they would only echo the shift.
//! - A byte above `0x7F`, or a control character, is `INVALID_FORMAT` at the
//!   exact `record:column`, once per field.
//! - An unknown record type, records out of order or too many or too few for
//!   the action are `INVALID_FORMAT` naming the record. More records than any
//!   action allows stops reading there.
//! - Digits that are not digits and dates of the wrong shape are
//!   `INVALID_FORMAT`; a well-shaped impossible date (`20260230`) is
//!   `INVALID_DATE`; an unknown action code is `INVALID_CODE` on `action`.
//! - Every field's `record:column` (its start column) goes into
//!   [`Parsed::locations`](crate::formats::Parsed), as do each record's
//!   container (`restrained_person`, `protected_persons`,
//!   `protected_persons[i]`, `order.service`, `order`) at `record:1`, each
//!   repeated code (`order.condition_codes[i]`), and `message` at `1:1`.
//! - `sent_at` stays none: the AMQP `timestamp` stands in for it, and the
//!   caller fills it.
//!
//! What a field means for the order (required per action, code lists,
//! lengths, dates in order) is checked afterwards by [`crate::validate`], the
//! same for every format.
//!
//! ## Code maps
//!
//! A CMS that writes its own codes (sex `1`, race `WHITE`) has them mapped to
//! the canonical ICD §0 codes by a code-map set
//! ([`crate::mapping::code_map`]). The layout names its default set
//! (`code_map`); a court's configuration may name another (`code_map` in
//! `[[courts]]`). At start, [`crate::broker::load_formats`] attaches each
//! layout's default set ([`Layout::with_code_map`]) and checks that every
//! court code fits the columns of its fields. The intake reads with the
//! court's set ([`Layout::read_order_with`]): the codes are mapped after
//! parsing and before validation, and a court code not in the set is
//! `INVALID_CODE` at its `record:column`.
//!
//! Shipped: `cms-a/1` (ICD §3, canonical codes, no set) and `cms-b/2`
//! (`schemas/layouts/cms-b-2.toml`: 240-byte records typed `10`–`50` in
//! columns 1–2, MMDDYYYY dates, CMS B's codes through the set `cms-b`).
//!
//! ## Writing ([`Layout::write_order`])
//!
//! The reverse of reading, for property tests, fixtures and tools: each of
//! the action's records is written in record order, fields padded (text
//! left-justified, numbers zero-padded), dates and times in their patterns,
//! a joined text split at its separator into as many repeated records as it
//! needs (with their line numbers), codes mapped back to court codes through
//! the set (the first court code in the file for a shared canonical code).
//! Records end with LF (CRLF when the layout accepts only CRLF). A valid
//! canonical order written and read back is the same order (`sent_at`
//! aside). What cannot be written faithfully is an error naming the field,
//! never cut: a value wider than its columns or over the layout's record
//! counts (`TOO_LONG`, or `INVALID_FORMAT` for counts), text that is not
//! printable ASCII, a value the action's records have no column for, an
//! order image (`INVALID_FORMAT`), a canonical code without court code
//! (`INVALID_CODE`), a time finer than its pattern or a year past 9999
//! (`INVALID_DATE`). It does not validate: missing fields are written blank.

#[cfg(test)]
pub(crate) mod fixtures;
mod layout;
mod pattern;
mod reader;
mod target;
mod writer;

pub use layout::{
    Columns, FieldSpec, FieldType, Layout, LayoutError, LayoutSpec, MAX_RECORD_LENGTH, RecordCount, RecordOrder,
    RecordSpec, Terminator,
};
