-- Heat cells: floor-map points counted per map, hour (UTC, start in ms) and square cell of
-- 0.25 map units (cx, cy: the cell's column and row from the map's origin), kept by the
-- writer in the same transaction as the points it inserts (a replayed point counts once),
-- so a heat map reads cells, not points. Purged with the points (retention `trajectories`,
-- whole hours).
CREATE TABLE heat_cells (
    map TEXT NOT NULL,
    hour_ms BIGINT NOT NULL,
    cx BIGINT NOT NULL,
    cy BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (map, hour_ms, cx, cy)
);

-- Work left to the program after a migration: the heat cells of points written before V5
-- are counted when the database is next opened (hour by hour; the row goes when done).
CREATE TABLE history_jobs (
    name TEXT PRIMARY KEY
);
INSERT INTO history_jobs (name) VALUES ('heat-cells');
