-- Results the fronts publish, one per (namespace, key): e.g. the Carbon
-- Black connector's verdict per binary, which its feed is built from.
CREATE TABLE results (
	ns         TEXT   NOT NULL,
	key        TEXT   NOT NULL,
	value      TEXT   NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (ns, key)
);
CREATE INDEX results_updated ON results (ns, updated_at);
