-- alert-ack: who acknowledged an alert, and when (t_ms). The alert is the one of the same
-- node posted at alert_t_ms by camera in group grp, of the same event and subject (its
-- identity, else its unknown id; alerts have no id beyond their runner's memory).
-- Kept as long as alerts (retention kind `alerts`).
CREATE TABLE alert_acks (
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    t_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    alert_t_ms BIGINT NOT NULL,
    grp TEXT NOT NULL,
    camera TEXT NOT NULL,
    event TEXT NOT NULL,
    subject TEXT NOT NULL,
    by_name TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX alert_acks_alert ON alert_acks (node, alert_t_ms);
CREATE INDEX alert_acks_t ON alert_acks (t_ms);
