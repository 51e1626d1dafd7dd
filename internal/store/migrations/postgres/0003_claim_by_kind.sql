-- A claim names the kinds it takes: walk only the open items of that kind
-- in priority order, never another kind's backlog.
CREATE INDEX work_items_open_kind ON work_items (kind, priority DESC, id)
	WHERE state IN ('queued', 'pending', 'retry', 'leased');
