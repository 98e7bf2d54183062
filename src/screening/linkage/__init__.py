"""Fallback linkage: department records whose ID number is wrong still reach their household.

Every department record is matched to the roster by its ID number. A record whose number
was mistyped (a digit changed, two digits swapped, the check digit dropped, a 15-digit
number converted wrongly) is quarantined as `invalid_id`, or, when the wrong number
happens to be valid, counted as unmatched; either way the household behind it is not
screened for that risk. This package finds the roster person such a record probably
belongs to, and a person decides (the machine never links):

    features.py  what is compared: the name (its surname, its pinyin for homophones), the
                 ID number's parts (the birth date digits, the region and sequence digits,
                 the sex digit), the township or village when the record carries them;
                 and the ID difference in words (`id_difference`)
    model.py     Splink (Fellegi–Sunter on DuckDB): blocking, comparisons, training on the
                 county's own records (u by random sampling, m by EM), prediction
    suggest.py   one period: the candidate records (db.linkage), the model, the
                 suggestions above the `linkage.suggest_probability` parameter, with the
                 record described as explain describes it and the reasons in words

The run (pipeline.run.screen_period) makes the suggestions after ingest; the publish stage
stores them in `link_suggestions` and writes, per township, the 身份核对 list
(publish/identity.py). `screening feedback import` takes the list back (feedback/links.py):
confirmed links go to `confirmed_links`, and from the next run the as-of read
(db.roster.events_as_of) gives the record the person's ID number, flagged `linked`, so the
evidence says 经人工核对关联; rejected pairs go to `rejected_links` and are not suggested
again.
"""
