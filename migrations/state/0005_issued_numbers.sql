-- Part numbers known to have been issued, per (type, polarization), as runs
-- first..last. Kept here and not in parts.db, so that restoring, pulling,
-- merging or clearing parts.db can never let a number be issued twice:
-- generation continues above the highest known number in the site's range.
-- Filled from parts.db's part_sequences and parts rows on every start (the
-- migration of the old high-water marks), from every file a restore, pull or
-- merge brings in, from the assembly log, and from the numbers other sites
-- publish in the parts.db manifest.
CREATE TABLE issued_numbers (
    part_type TEXT NOT NULL,
    polarization TEXT NOT NULL,
    first INTEGER NOT NULL CHECK(first BETWEEN 1 AND 99999),
    last INTEGER NOT NULL CHECK(last BETWEEN first AND 99999),
    PRIMARY KEY (part_type, polarization, first)
);
