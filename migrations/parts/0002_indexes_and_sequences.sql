-- Indexes for the documented queries and casmand's own lookups.
CREATE INDEX IF NOT EXISTS parts_type_pol ON parts(part_type, polarization);
CREATE INDEX IF NOT EXISTS parts_polarization ON parts(polarization);
CREATE INDEX IF NOT EXISTS parts_date_created ON parts(date_created);
CREATE INDEX IF NOT EXISTS antenna_positions_array ON antenna_positions(array_id);
CREATE INDEX IF NOT EXISTS antenna_positions_row ON antenna_positions(row_offset);

-- Highest part number ever issued per (type, polarization), so that a number is
-- never reused, even after its part row was deleted.
CREATE TABLE IF NOT EXISTS part_sequences (
    part_type TEXT NOT NULL,
    polarization TEXT NOT NULL,
    highest INTEGER NOT NULL CHECK(highest BETWEEN 0 AND 99999),
    PRIMARY KEY (part_type, polarization)
);
