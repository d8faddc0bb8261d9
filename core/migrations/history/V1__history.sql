-- Sightline history, version 1. One schema for SQLite and PostgreSQL (portable SQL only).
-- Every row of an event carries the publisher's (stream, seq): the spool's node id and the
-- event's sequence in it. They are the primary key, so an event delivered twice (a spool
-- replayed after a database outage) is written once (INSERT ... ON CONFLICT DO NOTHING).
-- Times are UTC milliseconds since the Unix epoch. No images, ever.

-- facematch decisions: who (identity or unknown id) was seen where, with what box.
CREATE TABLE sightings (
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    t_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    camera TEXT NOT NULL,
    track BIGINT NOT NULL,
    label TEXT NOT NULL,
    identity TEXT,
    unknown_id TEXT,
    similarity DOUBLE PRECISION,
    x DOUBLE PRECISION,
    y DOUBLE PRECISION,
    width DOUBLE PRECISION,
    height DOUBLE PRECISION,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX sightings_t ON sightings (t_ms);
CREATE INDEX sightings_label_t ON sightings (label, t_ms);
CREATE INDEX sightings_identity_t ON sightings (identity, t_ms);
CREATE INDEX sightings_unknown_t ON sightings (unknown_id, t_ms);
CREATE INDEX sightings_camera_t ON sightings (camera, t_ms);

-- presence state changes of a person in a group (arrived, out-of-view, back-in-view,
-- absent, re-entered): the intervals are read from consecutive changes.
CREATE TABLE presence (
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    t_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    grp TEXT NOT NULL,
    event TEXT NOT NULL,
    identity TEXT NOT NULL,
    label TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    camera TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX presence_grp_t ON presence (grp, t_ms);
CREATE INDEX presence_identity_t ON presence (identity, t_ms);

-- presence-alert: absences and strangers seen by several cameras.
CREATE TABLE alerts (
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    t_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    grp TEXT NOT NULL,
    event TEXT NOT NULL,
    identity TEXT,
    label TEXT,
    unknown_id TEXT,
    camera TEXT NOT NULL,
    cameras TEXT,
    absent_seconds DOUBLE PRECISION,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX alerts_t ON alerts (t_ms);
CREATE INDEX alerts_grp_t ON alerts (grp, t_ms);

-- zone-enter, zone-leave, zone-dwell.
CREATE TABLE zone_events (
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    t_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    camera TEXT NOT NULL,
    grp TEXT,
    zone TEXT NOT NULL,
    subject TEXT NOT NULL,
    event TEXT NOT NULL,
    stayed_seconds DOUBLE PRECISION,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX zone_events_zone_t ON zone_events (zone, t_ms);
CREATE INDEX zone_events_subject_t ON zone_events (subject, t_ms);

-- Floor-map trajectories (reidmap-trajectory), one row per point; k numbers the points of
-- the event.
CREATE TABLE trajectory_points (
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    k INTEGER NOT NULL,
    t_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    camera TEXT NOT NULL,
    map TEXT NOT NULL,
    track BIGINT NOT NULL,
    global_id BIGINT NOT NULL,
    x DOUBLE PRECISION NOT NULL,
    y DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (stream, seq, k)
);
CREATE INDEX trajectory_points_gid_t ON trajectory_points (global_id, t_ms);
CREATE INDEX trajectory_points_map_t ON trajectory_points (map, t_ms);
CREATE INDEX trajectory_points_t ON trajectory_points (t_ms);

-- Cameras going offline and coming back (and whole groups).
CREATE TABLE camera_events (
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    t_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    camera TEXT NOT NULL,
    grp TEXT,
    event TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX camera_events_t ON camera_events (t_ms);

-- Who removed whom from history, when, and what went with it. Never purged.
CREATE TABLE audit (
    t_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_t ON audit (t_ms);
