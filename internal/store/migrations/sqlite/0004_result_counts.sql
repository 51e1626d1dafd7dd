-- How many results each namespace holds, kept up to date by PutResult and
-- DeleteResult, so that a page can show the total without counting every
-- row.
CREATE TABLE result_counts (
	ns TEXT   PRIMARY KEY,
	n  INTEGER NOT NULL
);
INSERT INTO result_counts (ns, n) SELECT ns, COUNT(*) FROM results GROUP BY ns;
