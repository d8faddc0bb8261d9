-- Map points are purged map by map through (map, t_ms): the index on t_ms alone cost every
-- point insert a fifth b-tree and served nothing else.
DROP INDEX trajectory_points_t;
