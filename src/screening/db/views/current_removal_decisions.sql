-- 当前风险消除意见: each (period, household) with the township's current answer on that
-- period's 风险消除候选 list.
CREATE OR REPLACE VIEW current_removal_decisions AS
SELECT * EXCLUDE (is_current) FROM removal_decisions WHERE is_current
