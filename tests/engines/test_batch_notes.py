"""merge_notes: per-batch code-system warnings summed by hand."""

from __future__ import annotations

from pophealth.engines.batch_notes import merge_notes


def _other(a, b, pct, other, c, d):
    return (f"flag_conditions(b2h_icd10): {a} of {b} event row(s) ({pct}% >= "
            f"warn_other_system=20%) are in code system(s) the list does not cover ({other}) "
            f"and cannot count; the list covers icd10 ({c} row(s), {d} with a code in the list)")


def test_a_warning_not_every_batch_reached_is_summed_and_marked_partial():
    b1 = [_other(30, 100, 30, "snomed 20, syntheticpc 10", 70, 5)]
    b2 = [_other(25, 50, 50, "snomed 25", 25, 2)]
    # by hand: 30+25 = 55 of 100+50 = 150 rows (36.7 % -> "37%"); snomed 20+25 = 45,
    # syntheticpc 10; covered rows 70+25 = 95, of which 5+2 = 7 in the list; batch 3 was
    # below the threshold, so the sum is over 2 of 3 batches
    want = (_other(55, 150, 37, "snomed 45, syntheticpc 10", 95, 7)
            + " [summed over the 2 of 3 patient batches that reached the threshold; the "
              "list is judged per batch]")
    assert merge_notes([b1, b2, []], n_patients=10) == [want]


def test_a_warning_every_batch_reached_sums_to_the_one_call_message():
    b1 = [_other(30, 100, 30, "snomed 20, syntheticpc 10", 70, 5)]
    b2 = [_other(25, 50, 50, "snomed 25", 25, 2)]
    assert merge_notes([b1, b2], n_patients=10) == [
        _other(55, 150, 37, "snomed 45, syntheticpc 10", 95, 7)]
