-- Porter store, SQLite flavour (schema version 1).
--
-- The same logical schema as migrations/postgres/0001_init.sql; only the
-- column types differ (INTEGER/BLOB here, BIGINT/BIGSERIAL/BYTEA there).
-- Conventions for every table:
--   * times are INTEGER unix milliseconds (UTC);
--   * JSON documents are TEXT (serde_json of the model types);
--   * raw bytes are BLOB;
--   * enumerations are TEXT holding the upper-case wire spelling.
-- See src/store/sql.rs for the rules the queries implement.

-- inbound_messages: one row per AMQP message received from a court. It is the
-- deduplication record of ICD §5 (court, message_id, SHA-256 of the body) and
-- keeps the original bytes until purged.
CREATE TABLE inbound_messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    court_ori        TEXT    NOT NULL,           -- the court's 9-character ORI (queue routing key)
    message_id       TEXT    NOT NULL,           -- AMQP message_id, unique per court
    body_sha256      TEXT    NOT NULL,           -- lowercase hex SHA-256 of body
    body             BLOB    NOT NULL,           -- the AMQP body as received
    content_type     TEXT    NOT NULL,           -- application/xml or text/plain
    layout           TEXT,                       -- x-por-layout header, when given
    received_at      INTEGER NOT NULL,           -- when the broker received it
    outcome          TEXT    NOT NULL,           -- ACCEPTED (also when later refused in sequence: its sequence stays used) | EXPIRED (gave up waiting behind a gap: sequence freed) | REJECTED | DUPLICATE (same order, sequence and content as an accepted message)
    order_number     TEXT,                       -- when it could be read
    sequence         INTEGER,                    -- when it could be read
    action           TEXT,                       -- ISSUE | MODIFY | TERMINATE | CANCEL | SERVICE, when it could be read
    canonical_json   TEXT,                       -- the canonical OrderMessage (serde_json), for valid messages; its image is a reference (mime_type, sha256, size), the bytes are in images
    canonical_sha256 TEXT,                       -- hex SHA-256 of canonical_json as the validator computed it
    state_json       TEXT,                       -- the whole order once this message is applied (serde_json, image by reference); NULL until applied
    candidates_json  TEXT,                       -- partners the intake routed it to from the message alone (JSON array of wire names); the store adds the rest when it is applied
    warnings_json    TEXT,                       -- the validator's warnings (Vec<FieldError>, serde_json), for the ACCEPTED status sent when it is applied
    duplicate_of     INTEGER,                    -- outcome DUPLICATE: the accepted inbound_messages.id it repeats
    status_count     INTEGER NOT NULL DEFAULT 0  -- statuses issued so far; the source of status_sequence
);
-- Deduplication lookup (ICD §5).
CREATE UNIQUE INDEX inbound_messages_dedup ON inbound_messages (court_ori, message_id);
-- One accepted message per (court, order, sequence); also serves the sequence rules.
CREATE UNIQUE INDEX inbound_messages_accepted_sequence
    ON inbound_messages (court_ori, order_number, sequence) WHERE outcome = 'ACCEPTED';
-- Purge by age.
CREATE INDEX inbound_messages_received_at ON inbound_messages (received_at);

-- orders: the current state of each order key (court, order number), as the
-- gap-free prefix of its accepted messages (sequences 1..applied_sequence)
-- leaves it. Messages past a gap are accepted but settled once it fills: applied
-- (and routed), or, when the order is closed (or already issued) by then,
-- refused: REJECTED with a dead letter at stage sequence and no deliveries.
CREATE TABLE orders (
    court_ori        TEXT    NOT NULL,           -- the issuing court's ORI
    order_number     TEXT    NOT NULL,           -- the court's order number
    state            TEXT    NOT NULL,           -- NEW (nothing applied yet) | ACTIVE | TERMINATED | CANCELLED
    applied_sequence INTEGER NOT NULL,           -- highest n with sequences 1..n all accepted and settled here (applied, or refused as ORDER_CLOSED/SEQUENCE_CONFLICT)
    last_sequence    INTEGER NOT NULL,           -- highest accepted sequence (may be past a gap)
    closed_sequence  INTEGER,                    -- the applied TERMINATE or CANCEL that closed the order; NULL while NEW or ACTIVE
    order_json       TEXT,                       -- current canonical OrderMessage (serde_json, image by reference); NULL while NEW
    clets_nic        TEXT,                       -- CARPOS record id from the latest EPO ACK; cleared when XPO is acknowledged
    routing_json     TEXT,                       -- the routing memory (routing::Sticky, serde_json): partners that keep receiving the order
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (court_ori, order_number)
);

-- deliveries: one per accepted inbound message and routed partner. Per order
-- and partner they go out in sequence order.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    inbound_id       INTEGER NOT NULL REFERENCES inbound_messages (id),
    court_ori        TEXT    NOT NULL,           -- copied from the inbound message, for ordering
    order_number     TEXT    NOT NULL,           -- copied from the inbound message, for ordering
    sequence         INTEGER NOT NULL,           -- copied from the inbound message, for ordering
    partner          TEXT    NOT NULL,           -- CLETS | DOJ | LEA:<ORI>
    state            TEXT    NOT NULL,           -- PENDING | ACCEPTED | REJECTED | DEAD (| DISCARDED, by an operator)
    attempts         INTEGER NOT NULL DEFAULT 0, -- attempts made since created_at or the latest replay
    revision         INTEGER NOT NULL DEFAULT 0, -- 0 until an edit-and-replay (ICD §5)
    next_attempt_at  INTEGER NOT NULL,           -- not due before this time
    last_error       TEXT,                       -- the latest transient or permanent failure
    replayed_at      INTEGER,                    -- the latest operator replay (NULL: none)
    first_attempt_at INTEGER,                    -- the first attempt since created_at or the latest replay (NULL: none yet); the retry max age counts from it
    lease_owner      TEXT,                       -- the broker whose attempt is in flight (NULL: none)
    lease_until      INTEGER,                    -- that broker's claim ends then; after it, another broker may take the delivery
    lease_token      INTEGER NOT NULL DEFAULT 0, -- fencing token: one more at every claim; only a result under the current token is recorded
    in_turn          INTEGER NOT NULL DEFAULT 0, -- 1 once every earlier delivery of its lane (order and partner) is ACCEPTED or DISCARDED: its turn has come
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX deliveries_inbound_partner ON deliveries (inbound_id, partner);
-- What a claim reads: pending deliveries whose turn has come, oldest first,
-- per partner and over all LEA agencies; and pending deliveries by due time.
CREATE INDEX deliveries_claimable ON deliveries (partner, created_at, id) WHERE state = 'PENDING' AND in_turn = 1;
CREATE INDEX deliveries_claimable_lea ON deliveries (created_at, id)
    WHERE state = 'PENDING' AND in_turn = 1 AND partner LIKE 'LEA:%';
CREATE INDEX deliveries_pending_due ON deliveries (partner, next_attempt_at) WHERE state = 'PENDING';
-- Earlier sequences of the same order and partner.
CREATE INDEX deliveries_order ON deliveries (court_ori, order_number, partner, sequence);

-- partner_attempts: every request sent to a partner and what came back.
CREATE TABLE partner_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      INTEGER NOT NULL REFERENCES deliveries (id),
    attempted_at     INTEGER NOT NULL,           -- when the request was sent
    request          BLOB    NOT NULL,           -- the request bytes; an inlined order image is cut out (see image_sha256)
    image_sha256     TEXT,                       -- the order image the request inlined (images.sha256); NULL when none
    image_offset     INTEGER,                    -- where in request the image's base64 text stood; the download puts it back
    response         TEXT,                       -- the partner's answer, when there was one
    error            TEXT,                       -- the transport problem, when there was none
    outcome          TEXT    NOT NULL            -- ACCEPTED | REJECTED | RETRY | DEAD
);
CREATE INDEX partner_attempts_delivery ON partner_attempts (delivery_id, id);

-- statuses: the outbox of por.responses.<ORI>. One row per OrderStatusMessage.
CREATE TABLE statuses (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    court_ori        TEXT    NOT NULL,           -- the court it goes to
    correlates_to    TEXT    NOT NULL,           -- the inbound message_id (AMQP correlation_id)
    inbound_id       INTEGER REFERENCES inbound_messages (id), -- NULL for CONFLICT_REJECTED (numbered from the original's counter, but not re-sent with it)
    status_sequence  INTEGER NOT NULL,           -- por:StatusSequence, per correlation id (inbound message_id)
    kind             TEXT    NOT NULL,           -- ACCEPTED | REJECTED | CONFLICT_REJECTED | PARTNER_ACCEPTED | PARTNER_REJECTED | DEAD_LETTERED
    partner          TEXT,                       -- for partner statuses
    message_json     TEXT    NOT NULL,           -- the StatusMessage (serde_json)
    created_at       INTEGER NOT NULL,
    published_at     INTEGER                     -- when RabbitMQ confirmed it; NULL = pending
);
CREATE INDEX statuses_inbound ON statuses (inbound_id, status_sequence);
CREATE INDEX statuses_message ON statuses (court_ori, correlates_to);
CREATE INDEX statuses_pending ON statuses (id) WHERE published_at IS NULL;

-- dead_letters: the operators' record (ICD §9). Kept when the inbound message
-- is purged, so inbound_id and delivery_id are plain references, not foreign keys.
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    inbound_id       INTEGER,                    -- inbound_messages.id (may be purged)
    delivery_id      INTEGER,                    -- deliveries.id for stages deliver and sequence (may be purged)
    court_ori        TEXT    NOT NULL,
    message_id       TEXT    NOT NULL,           -- the inbound message_id
    order_number     TEXT,
    sequence         INTEGER,
    stage            TEXT    NOT NULL,           -- validate | sequence (refused when applied in sequence) | deliver
    partner          TEXT,                       -- for stages deliver and sequence (NULL at sequence when nothing was routed)
    reason           TEXT    NOT NULL,           -- the ICD §4 code that sums it up
    errors_json      TEXT    NOT NULL,           -- Vec<FieldError> (serde_json)
    body             BLOB    NOT NULL,           -- the original bytes
    content_type     TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,           -- delivery attempts made (0 at stage validate)
    created_at       INTEGER NOT NULL,
    published_at     INTEGER,                    -- when por.dead confirmed it; NULL = pending
    resolved_at      INTEGER,                    -- when an operator replayed or discarded it; NULL = open
    resolution       TEXT,                       -- REPLAYED | EDIT_REPLAYED | DISCARDED; NULL = open
    resolved_by      TEXT                        -- the operator who resolved it
);
CREATE INDEX dead_letters_created ON dead_letters (created_at);
CREATE INDEX dead_letters_court ON dead_letters (court_ori, created_at);
CREATE INDEX dead_letters_pending ON dead_letters (id) WHERE published_at IS NULL;
-- Open dead letters of a delivery (replay, discard).
CREATE INDEX dead_letters_delivery ON dead_letters (delivery_id) WHERE resolved_at IS NULL;

-- conflicts: each arrival of a known (court, message_id) with a different body
-- (ICD §5 CONFLICT_REJECTED), kept like an inbound message: its bytes, hash and
-- time. The original inbound message is untouched. A repeat of the same
-- conflicting body is answered with the same status, not a new row.
CREATE TABLE conflicts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    court_ori        TEXT    NOT NULL,           -- the court's ORI (queue routing key)
    message_id       TEXT    NOT NULL,           -- the message_id it shares with the original
    body_sha256      TEXT    NOT NULL,           -- lowercase hex SHA-256 of body
    body             BLOB    NOT NULL,           -- the AMQP body as received
    content_type     TEXT    NOT NULL,           -- as received
    received_at      INTEGER NOT NULL,           -- when the broker received it
    status_id        INTEGER NOT NULL REFERENCES statuses (id) -- its CONFLICT_REJECTED status
);
-- Repeats of a conflicting body (not unique: a purged original may leave older ones).
CREATE INDEX conflicts_body ON conflicts (court_ori, message_id, body_sha256);
CREATE INDEX conflicts_received_at ON conflicts (received_at);

-- images: the signed order images of accepted messages, by SHA-256, stored once
-- (in the intake transaction that accepts the message). The JSON columns refer to
-- them by (mime_type, sha256, size); DOJ requests inline them (ICD §7), LEA
-- agencies fetch them through signed links (ICD §8, /images/<sha256>).
CREATE TABLE images (
    sha256           TEXT    PRIMARY KEY,        -- lowercase hex SHA-256 of data
    mime_type        TEXT    NOT NULL,           -- application/pdf or image/tiff
    size             INTEGER NOT NULL,           -- length of data in bytes
    data             BLOB    NOT NULL,           -- the decoded image, once (the raw message body keeps the court's own bytes)
    created_at       INTEGER NOT NULL
);

-- revisions: operator edits of a delivery's message (edit-and-replay, ICD §5,
-- §9). The original stays in inbound_messages; each edit is a new row, and
-- deliveries.revision names the one the delivery sends (0 = the original).
CREATE TABLE revisions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      INTEGER NOT NULL REFERENCES deliveries (id),
    revision         INTEGER NOT NULL,           -- 1, 2, …: the delivery's revision once this edit is replayed
    canonical_json   TEXT    NOT NULL,           -- the edited canonical OrderMessage (serde_json)
    state_json       TEXT    NOT NULL,           -- the whole order with the edit applied (what HTTP partners receive)
    dead_letter_id   INTEGER NOT NULL,           -- the dead letter the edit answered
    edited_by        TEXT    NOT NULL,           -- operator
    edited_at        INTEGER NOT NULL,
    reason           TEXT    NOT NULL            -- why the operator edited it
);
CREATE UNIQUE INDEX revisions_delivery ON revisions (delivery_id, revision);

-- audit: every operator action on dead letters (ICD §9), written in the same
-- transaction as its effect. Never purged.
CREATE TABLE audit (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               INTEGER NOT NULL,           -- when
    operator         TEXT    NOT NULL,           -- who (from the request until bearer tokens exist)
    action           TEXT    NOT NULL,           -- REPLAY | EDIT_REPLAY | DISCARD | BULK_REPLAY
    dead_letter_id   INTEGER NOT NULL,           -- the dead letter acted on
    reason           TEXT    NOT NULL,           -- why
    details_json     TEXT    NOT NULL            -- what it did (JSON object: delivery, revision, dead letters it produced, …)
);
CREATE INDEX audit_dead_letter ON audit (dead_letter_id, id);
CREATE INDEX audit_at ON audit (at);

-- leads: which broker runs a background task (gap expiry, the outbox sweep,
-- purges) when several share the store, so each runs once, not once per
-- broker. A lead is held until `until` and renewed by its holder each round;
-- once it has run out, another broker takes it.
CREATE TABLE leads (
    task             TEXT    PRIMARY KEY,        -- gap_expiry | outbox_sweep | purge
    owner            TEXT    NOT NULL,           -- the broker holding it (its lease owner name)
    until            BIGINT  NOT NULL            -- unix ms: held until then unless renewed
);
