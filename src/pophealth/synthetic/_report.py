"""Realism figures of a synthetic population (used by tests and synthetic_data/README.md)."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

_AGE_BANDS = [0, 18, 45, 65, 75, 85, 200]
_AGE_LABELS = ["0-17", "18-44", "45-64", "65-74", "75-84", "85+"]
_ICD_VALID = r"^[A-Z][0-9]{2}[0-9A-Z]{0,2}$"


def auroc(score, label) -> float:
    """Area under the ROC curve (Mann-Whitney, ties averaged); vectorised."""
    score = np.asarray(score, dtype=float)
    label = np.asarray(label, dtype=bool)
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def cost_shares(cost) -> dict:
    """Share of total cost in the top 1 %, top 5 % and bottom 50 % of patients."""
    c = np.sort(np.asarray(cost, dtype=float))[::-1]
    total, n = c.sum(), len(c)
    top = lambda q: float(c[: int(np.ceil(q * n))].sum() / total)  # noqa: E731
    return {"top1": top(0.01), "top5": top(0.05),
            "bottom50": float(c[n - n // 2:].sum() / total), "zero": float((c == 0).mean())}


def _top_set(values: np.ndarray, q: float) -> np.ndarray:
    k = int(np.ceil(q * len(values)))
    out = np.zeros(len(values), dtype=bool)
    out[np.argsort(-values, kind="stable")[:k]] = True
    return out


def cms_counts(pop) -> pd.Series:
    """Distinct CMS-20 conditions per patient (register order), flagged from all history with
    the shipped ``cms_snomed_synthetic`` list (SNOMED CT + labelled stand-ins)."""
    from pophealth.core.conditions import flag_conditions

    reg, ev = pop.register, pop.events
    flags = flag_conditions(ev[ev["setting"].astype(str) == "primary"], "cms_snomed_synthetic", register=reg,
                            index_date=pop.index_date)
    return flags.sum(axis=1).astype(np.int64).reindex(reg["patient_id"], fill_value=0)


def realism_summary(pop) -> dict:
    """Compute the realism figures reported in ``synthetic_data/README.md``.

    Parameters
    ----------
    pop : Population
        From :func:`pophealth.synthetic.make_population`.

    Returns
    -------
    dict
        Nested figures: ``geography``, ``demography``, ``multimorbidity``, ``costs``,
        ``outcomes``, ``codes``, ``frailty`` (eFI bands 65+, HFRS bands 75+),
        ``qof_prevalence`` (registers from the SNOMED CT lists) and ``rates_by_age``.

    Examples
    --------
    >>> from pophealth.synthetic import make_population, realism_summary
    >>> s = realism_summary(make_population(2_000, random_state=0))
    >>> 0.0 < s["outcomes"]["emergency_admission_rate"] < 0.5
    True
    """
    reg, out, act, ev = pop.register, pop.outcomes, pop.activity, pop.events
    n = len(reg)
    lsoa = reg.groupby("lsoa").size()
    pcn = reg.groupby("pcn").size()
    geography = {
        "n_icb": int(reg["icb"].nunique()), "n_pcn": int(len(pcn)),
        "n_practice": int(reg["practice"].nunique()), "n_lsoa": int(len(lsoa)),
        "pcn_size_min": int(pcn.min()), "pcn_size_max": int(pcn.max()),
        "lsoa_size_min": int(lsoa.min()), "lsoa_size_median": float(lsoa.median()),
        "lsoa_size_max": int(lsoa.max()),
        "lsoa_share_1000_3000": float(lsoa.between(1000, 3000).mean()),
        "lsoa_codes_L99": bool(reg["lsoa"].str.startswith("L99").all()),
    }
    path = resources.files("pophealth") / "data" / "synthetic" / "age_sex.csv"
    with path.open("r", encoding="utf-8") as fh:
        target = pd.read_csv(fh)
    edges = list(target["age_from"]) + [200]
    band = pd.cut(reg["age"], edges, right=False, labels=False)
    got = pd.crosstab(band, reg["sex"]).reindex(range(len(target)), fill_value=0) / n
    want = target[["female", "male"]].to_numpy() / target[["female", "male"]].to_numpy().sum()
    demography = {
        "female_share": float((reg["sex"] == "F").mean()),
        "age_65_plus_share": float((reg["age"] >= 65).mean()),
        "age_sex_max_abs_diff_pp": float(100 * np.abs(got[["F", "M"]].to_numpy() - want).max()),
        "ethnicity": reg["ethnicity"].value_counts(normalize=True).round(4).to_dict(),
    }
    cms = cms_counts(pop).to_numpy()
    mm = cms >= 2
    age_band = pd.cut(reg["age"], _AGE_BANDS, right=False, labels=_AGE_LABELS)
    quint = np.where(reg["imd_decile"] <= 2, "most_deprived_20pc",
                     np.where(reg["imd_decile"] >= 9, "least_deprived_20pc", "middle"))
    table = pd.Series(mm).groupby([age_band.to_numpy(), quint], observed=True).mean().unstack()
    multimorbidity = {
        "definition": ">= 2 of the 20 CMS conditions (cms_snomed_synthetic list)",
        "prevalence": float(mm.mean()), "share_of_multimorbid_aged_65_plus":
            float((reg["age"].to_numpy()[mm] >= 65).mean()),
        "mean_cms_conditions": float(cms.mean()),
        "by_age_and_deprivation": {a: {k: round(float(v), 4) for k, v in row.items()}
                                   for a, row in table.iterrows()},
    }
    prior = act.groupby("patient_id")["cost"].sum().reindex(reg["patient_id"], fill_value=0.0).to_numpy()
    nxt = out["total_cost"].to_numpy()
    top_prior, top_next = _top_set(prior, 0.01), _top_set(nxt, 0.01)
    costs = {
        "next_12m": cost_shares(nxt), "prior_12m": cost_shares(prior),
        "mean_next_12m": float(nxt.mean()), "mean_prior_12m": float(prior.mean()),
        "top1_persistence": float(top_next[top_prior].mean()),
        "top5_persistence": float(_top_set(nxt, 0.05)[_top_set(prior, 0.05)].mean()),
    }
    em = out["emergency_admission"].to_numpy()
    outcomes = {
        "emergency_admission_rate": float(em.mean()),
        "oracle_auroc_emergency_admission": auroc(out["p_emergency_admission"], em),
        "death_rate": float(out["death"].mean()),
        "oracle_auroc_death": auroc(out["p_death"], out["death"]),
        "prior_year_emergency_admission_rate": float(
            act.loc[act["kind"] == "emergency_admission", "patient_id"].nunique() / n),
    }
    icd = ev[ev["code_system"].astype(str) == "icd10"]
    norm = icd["code"].astype(str).str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)
    per = icd.groupby("patient_id").size().reindex(reg["patient_id"], fill_value=0)
    codes = {
        "icd10_rows_per_patient": float(len(icd) / n),
        "primary_care_rows_per_patient": float((len(ev) - len(icd)) / n),
        "share_with_0_icd10_rows": float((per == 0).mean()),
        "share_with_0_2_icd10_rows": float((per <= 2).mean()),
        "icd10_rows_p99": float(per.quantile(0.99)),
        "invalid_icd10_share": float((~norm.str.match(_ICD_VALID)).mean()),
        "activity_rows_per_patient": float(len(act) / n),
    }
    return {"n_patients": n, "geography": geography, "demography": demography,
            "multimorbidity": multimorbidity, "costs": costs, "outcomes": outcomes, "codes": codes,
            "frailty": frailty_bands(pop), "qof_prevalence": qof_prevalence(pop),
            "rates_by_age": rates_by_age(pop)}


#: QOF-style registers on the synthetic population: PCD cluster(s) of the shipped
#: ``pcd_snomed`` list and the QOF register's minimum age (the denominator is everyone that age)
QOF_REGISTERS = {
    "hypertension": ("hyp_cod", 0), "diabetes": ("dm_cod", 17), "asthma": ("ast_cod", 6),
    "copd": ("copd_cod", 0), "chd": ("chd_cod", 0), "atrial_fibrillation": ("afib_cod", 0),
    "heart_failure": ("hf_cod", 0), "stroke_tia": ("strk_cod tia_cod", 0),
    "ckd": ("ckdatrisk2_cod", 18), "dementia": ("dem_cod", 0), "depression": ("depr_cod", 18),
    "smi": ("mh_cod", 0), "epilepsy": ("epil_cod", 18), "rheumatoid_arthritis": ("rarth_cod", 16),
    "osteoporosis": ("osteo_cod", 50), "pad": ("pad_cod", 0),
}


def qof_prevalence(pop) -> dict:
    """Recorded prevalence of QOF-style registers, flagged from the primary-care events with the
    shipped SNOMED CT list ``pcd_snomed`` (any code ever), over QOF's age denominators.

    A simplification of the QOF business rules: no resolved codes, no treatment criteria.
    Returns ``{register: share}``; ``dementia_65_plus`` is also given (dementia among 65+).
    """
    from pophealth.core.conditions import flag_conditions

    reg, ev = pop.register, pop.events
    flags = flag_conditions(ev[ev["setting"].astype(str) == "primary"], "pcd_snomed",
                            register=reg, index_date=pop.index_date)
    flags = flags.reindex(reg["patient_id"], fill_value=False)
    age = reg["age"].to_numpy()
    out = {}
    for name, (clusters, min_age) in QOF_REGISTERS.items():
        on = flags[clusters.split()].any(axis=1).to_numpy()
        out[name] = float(on[age >= min_age].mean())
    out["dementia_65_plus"] = float(flags["dem_cod"].to_numpy()[age >= 65].mean())
    return out


#: age bands for admissions and deaths per 1,000
RATE_BANDS = [0, 1, 5, 15, 45, 65, 75, 85, 200]
RATE_LABELS = ["0", "1-4", "5-14", "15-44", "45-64", "65-74", "75-84", "85+"]


_DEATH_BANDS = [0, 1, 15, 45, 65, 75, 85, 200]  # ONS weekly deaths age groups
_DEATH_LABELS = ["<1", "1-14", "15-44", "45-64", "65-74", "75-84", "85+"]


def rates_by_age(pop) -> dict:
    """Emergency admissions in the 12 months before index and deaths in the 12 months after,
    per 1,000 registered patients, by age band; the share of deaths in each ONS age group;
    the share of people aged 75+ with an inpatient
    episode (emergency or elective) in the 2 years before index; and the top true 12-month
    emergency-admission probability."""
    reg, act, out, ev = pop.register, pop.activity, pop.outcomes, pop.events
    band = pd.cut(reg["age"], RATE_BANDS, right=False, labels=RATE_LABELS).to_numpy()
    em = act.loc[act["kind"].astype(str) == "emergency_admission"].groupby("patient_id").size()
    em = em.reindex(reg["patient_id"], fill_value=0).to_numpy()
    since = pop.index_date - pd.Timedelta(days=730)
    ip = ev.loc[(ev["setting"].astype(str) == "inpatient") & (ev["date"] > since), "patient_id"]
    o75 = reg["age"].to_numpy() >= 75
    return {
        "emergency_admissions_per_1000_all_ages": round(float(em.mean() * 1000), 1),
        "elective_admissions_per_1000_all_ages": round(float(
            (act["kind"].astype(str) == "elective_admission").sum() / len(reg) * 1000), 1),
        "emergency_admissions_per_1000": {
            k: round(float(v), 1) for k, v in (pd.Series(em).groupby(band).mean() * 1000).items()},
        "deaths_per_1000": {
            k: round(float(v), 1)
            for k, v in (out["death"].astype(float).groupby(band).mean() * 1000).items()},
        "death_share_by_age": {
            k: round(float(v), 4) for k, v in (
                out["death"].astype(float).groupby(pd.cut(reg["age"], _DEATH_BANDS, right=False,
                                                          labels=_DEATH_LABELS).to_numpy()).sum()
                / max(int(out["death"].sum()), 1)).items()},
        "share_75_plus_inpatient_2y": float(reg["patient_id"][o75].isin(ip.unique()).mean()),
        "max_p_emergency_admission": float(out["p_emergency_admission"].max()),
    }


def frailty_bands(pop) -> dict:
    """eFI bands among people aged 65+ and HFRS bands among people aged 75+.

    eFI uses the ``efi_snomed_synthetic`` code list (all history); HFRS uses the shipped Gilbert
    2018 list over the 2 years before index (``pophealth.hfrs`` defaults). ``hfrs_75_inpatient``
    restricts to people aged 75+ with at least one inpatient ICD-10 event in those 2 years.
    """
    import warnings

    from pophealth.core.conditions import flag_conditions
    from pophealth.core.indices import efi, hfrs

    reg, ev = pop.register, pop.events
    age = reg.set_index("patient_id")["age"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = efi(flag_conditions(ev, "efi_snomed_synthetic", register=reg, index_date=pop.index_date),
                missing_deficits="absent")
        h = hfrs(ev, register=reg, index_date=pop.index_date)
    e, h = e.reindex(age.index), h.reindex(age.index)
    since = pop.index_date - pd.Timedelta(days=730)
    ip = ev[(ev["code_system"].astype(str) == "icd10") & (ev["setting"].astype(str) == "inpatient")
            & (ev["date"] > since) & (ev["date"] <= pop.index_date)]["patient_id"].unique()
    o75 = (age >= 75).to_numpy()
    with_ip = o75 & age.index.isin(ip)

    def shares(band):
        return {str(k): round(float(v), 4) for k, v in band.value_counts(normalize=True).sort_index().items()}

    return {"efi_65_plus": shares(e.loc[(age >= 65).to_numpy(), "efi_band"]),
            "efi_mean_deficits_65_plus": float(e.loc[(age >= 65).to_numpy(), "efi_deficits"].mean()),
            "hfrs_75_plus": shares(h.loc[o75, "hfrs_band"]),
            "hfrs_75_inpatient": shares(h.loc[with_ip, "hfrs_band"]),
            "share_75_plus_with_inpatient_icd10": float(with_ip.sum() / max(o75.sum(), 1)),
            "hfrs_max_75_plus": float(h.loc[o75, "hfrs"].max()) if o75.any() else 0.0}
