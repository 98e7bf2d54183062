-- 户历史: one row per household per screened period, listed or not, with the decision
-- the township made on that period's list and its answer on that period's 风险消除候选 list.
CREATE OR REPLACE VIEW household_history AS
SELECT h.period, h.township, h.village, h.household_id, h.monitoring_status,
       h.colour, h.risk_codes, h.risk_labels, h.listed, h.listing_status,
       v.result AS verification_result, v.verification_date, v.note AS verification_note,
       h.run_id,
       r.decision AS removal_decision, r.decision_date AS removal_decision_date,
       r.note AS removal_note
FROM screened_households h
LEFT JOIN current_verifications v ON v.period = h.period AND v.household_id = h.household_id
LEFT JOIN current_removal_decisions r ON r.period = h.period AND r.household_id = h.household_id
