-- Blocks of part numbers leased by the sites, as this site last read them
-- from the store (`leases/part_numbers.json`, updated by compare-and-swap):
-- within a block only its site issues numbers, so two sites never issue the
-- same number, even offline. A block is kept after its numbers are used up.
CREATE TABLE IF NOT EXISTS part_leases (
    part_type TEXT NOT NULL,
    polarization TEXT NOT NULL,
    first INTEGER NOT NULL CHECK (first BETWEEN 1 AND 99999),
    last INTEGER NOT NULL CHECK (last BETWEEN first AND 99999),
    site TEXT NOT NULL,
    leased_at TEXT NOT NULL,
    PRIMARY KEY (part_type, polarization, first)
);
