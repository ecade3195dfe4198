SELECT org_id FROM organizations WHERE name = $1
