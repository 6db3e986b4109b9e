-- The history of the small tables read by as-of questions (positions,
-- boards and grid coordinates at a past moment): each table's changes in
-- clock order, found without reading the parts' changes, which are most of
-- the log. Partial, so a write to `parts` adds no index entry.
CREATE INDEX IF NOT EXISTS change_log_positions ON change_log(hlc) WHERE tbl = 'antenna_positions';
CREATE INDEX IF NOT EXISTS change_log_boards ON change_log(hlc) WHERE tbl = 'snap_boards';
CREATE INDEX IF NOT EXISTS change_log_coordinates ON change_log(hlc) WHERE tbl = 'grid_positions';
