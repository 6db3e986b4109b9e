-- Lookups of a part's events from either end, and the current-state rule's
-- ordering by (scan_time, id).
CREATE INDEX IF NOT EXISTS assembly_part ON assembly(part_number, scan_time);
CREATE INDEX IF NOT EXISTS assembly_connected_to ON assembly(connected_to, scan_time);
CREATE INDEX IF NOT EXISTS assembly_scan_time ON assembly(scan_time);
