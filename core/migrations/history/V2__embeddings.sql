-- Face embeddings, only with `sightline run --history-embeddings` (for search by photo): one
-- per track decision, the L2-normalised vector quantised to int8 (round(v * 127)), base64.
-- Kept 7 days by default (retention kind `embeddings`).
CREATE TABLE embeddings (
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    t_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    camera TEXT NOT NULL,
    track BIGINT NOT NULL,
    label TEXT NOT NULL,
    identity TEXT,
    unknown_id TEXT,
    model TEXT NOT NULL,
    vector TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX embeddings_t ON embeddings (t_ms);
CREATE INDEX embeddings_label ON embeddings (label);
CREATE INDEX embeddings_identity ON embeddings (identity);
CREATE INDEX embeddings_unknown ON embeddings (unknown_id);
