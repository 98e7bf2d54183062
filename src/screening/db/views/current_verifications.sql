-- 当前核实结果: each (period, household) with the township's current decision.
CREATE OR REPLACE VIEW current_verifications AS
SELECT * EXCLUDE (is_current) FROM verifications WHERE is_current
