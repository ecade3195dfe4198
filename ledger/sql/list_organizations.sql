-- Every organization, by id (at most a few rows are read: see only_organization).
SELECT org_id, name FROM organizations ORDER BY org_id LIMIT 6
