"""Internals of the synthetic population generator (public API in :mod:`pophealth.synthetic.population`).

The population is generated in fixed blocks of :data:`BLOCK_SIZE` patients. Block ``b`` holds
patient ids ``b * BLOCK_SIZE ...`` and draws from ``numpy.random.default_rng([random_state,
2, b])``; the geography and NHS-number permutation draw from ``[random_state, 1,
n_patients]``. So the output depends only on ``(n_patients, random_state, index_date)``,
never on how blocks are grouped into batches. All parameters are read from
``pophealth/data/synthetic/*.csv`` (see the README there). Every step is vectorised over
patients and rows; loops run only over conditions, kinds and years.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from pophealth.contracts.nhs_number import TEST_RANGE_CAPACITY, test_range_numbers
from pophealth.contracts.schema import naive_timestamp

BLOCK_SIZE = 50_000  # fixed: changing it changes every generated population
YEAR = 365
KINDS = ("emergency_admission", "elective_admission", "ae", "outpatient", "gp")
EM, EL, AE, OP, GP = range(5)
SETTINGS = ("primary", "inpatient", "outpatient", "ae")
CODE_SYSTEMS = ("icd10", "synthetic_pc", "snomed")
ICD10, STANDIN, SNOMED = range(3)
#: recorded-frailty PCD clusters by eFI band (mild, moderate, severe)
FRAILTY_CLUSTERS = ("mildfrail_cod", "modfrail_cod", "sevfrail_cod")
SEXES = ("F", "M")
JUNK_CODES = ("ZZZ9", "", "E11.99999", "X", "99999", "I2", "J44999", "NULL", "?", "R69.X9X", "0")
_HOSP_POOLS = ("emergency_primary", "elective_primary", "ae_dx", "op_dx",
               "frailty_secondary", "misc_secondary")


def _read_csv(name: str) -> pd.DataFrame:
    path = resources.files("pophealth") / "data" / "synthetic" / name
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, keep_default_na=False, na_values=[""])


def _read_codelist(name: str) -> pd.DataFrame:
    path = resources.files("pophealth") / "data" / "codelists" / f"{name}.csv"
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def pc_code(item_no: int, review: int) -> str:
    """Synthetic primary-care code of model item ``item_no`` (0-based); review 0/1."""
    return f"SYN{item_no + 1:03d}{review}"


@dataclass(frozen=True)
class Model:
    """Parameters, read once from the CSV tables."""

    p: dict
    items: pd.DataFrame
    coef: dict  # per-item numpy arrays
    age_lo: np.ndarray
    age_width: np.ndarray
    age_sex: np.ndarray
    age_cdf: np.ndarray
    eth_names: tuple
    eth_base: np.ndarray
    eth_dep: np.ndarray
    eth_young: np.ndarray
    pool_of: dict  # pool name -> pool id
    pool_cum: np.ndarray  # pool id + within-pool cdf, ascending
    pool_code: np.ndarray  # clean-code index per pool entry
    variant_vocab: np.ndarray  # (n_clean, 5) -> index into event vocab
    is_three_char: np.ndarray
    junk_idx: np.ndarray
    pc_idx: np.ndarray  # (K, 2) -> index into event vocab (stand-in codes)
    pc_cum: np.ndarray  # primary-care pool id + within-pool cdf (see _pc_pools)
    pc_code: np.ndarray  # event-vocab index per primary-care pool entry
    pc_sys: np.ndarray  # code system (index into CODE_SYSTEMS) per primary-care pool entry
    efi_map: np.ndarray  # (K, 36) float32: item -> eFI deficit
    event_vocab: np.ndarray
    item_coef: np.ndarray  # (5, K) float32: intercept, age/10, deprivation, latent, male


@lru_cache(maxsize=1)
def load_model() -> Model:
    p = {r.name: float(r.value) for r in _read_csv("model_params.csv").itertuples()}
    items = _read_csv("conditions.csv")
    items["sex"] = items["sex"].fillna("")
    for col in ("cms", "efi"):
        items[col] = items[col].fillna("")
    k = len(items)
    coef = {c: items[c].to_numpy(dtype=float) for c in (
        "alpha", "beta_age", "gamma_dep", "lambda_latent", "delta_male", "min_age",
        "recency_years", "hospital_record_prob", "adm_beta", "death_beta", "target_prevalence",
        "snomed_share")}
    coef["sex_only"] = np.select([items["sex"].eq("F"), items["sex"].eq("M")], [0, 1], -1)
    coef["cms"] = items["cms"].ne("").to_numpy()
    coef["cancer"] = items["item"].eq("cancer").to_numpy()

    ages = _read_csv("age_sex.csv")
    lo = np.repeat(ages["age_from"].to_numpy(), 2)
    width = np.repeat((ages["age_to"] - ages["age_from"] + 1).to_numpy(), 2)
    sex = np.tile([0, 1], len(ages))
    counts = np.column_stack([ages["female"], ages["male"]]).ravel().astype(float)
    cdf = np.cumsum(counts) / counts.sum()

    eth = _read_csv("ethnicity.csv")
    share = eth["share"].to_numpy(float)
    dep_eff, young_eff = eth["dep_effect"].to_numpy(float), eth["young_effect"].to_numpy(float)
    d_levels = (5.5 - np.arange(1, 11)) / 4.5
    mean_dep = np.exp(np.outer(dep_eff, d_levels)).mean(axis=1)
    young_share = counts[lo < 30].sum() / counts.sum()
    mean_young = young_share * np.exp(young_eff) + (1 - young_share)
    base = np.log(share / share[0]) - np.log(mean_dep * mean_young)

    icd = _read_csv("icd10_codes.csv")
    pool_names = list(items["item"]) + list(_HOSP_POOLS)
    pool_of = {name: i for i, name in enumerate(pool_names)}
    unknown = set(icd["pool"]) - set(pool_of)
    if unknown:
        raise ValueError(f"icd10_codes.csv: unknown pools {sorted(unknown)}")
    clean = np.array(sorted(set(icd["code"])))
    icd = icd.assign(pid=icd["pool"].map(pool_of)).sort_values(["pid", "code"], kind="stable")
    pid = icd["pid"].to_numpy()
    w = icd["weight"].to_numpy(float)
    tot = pd.Series(w).groupby(pid).transform("sum").to_numpy()
    within = pd.Series(w).groupby(pid).cumsum().to_numpy() / tot
    pool_cum = pid + np.minimum(within, 1.0)
    pool_cum[np.r_[pid[1:] != pid[:-1], True]] = pid[np.r_[pid[1:] != pid[:-1], True]] + 1.0
    pool_code = np.searchsorted(clean, icd["code"].to_numpy())

    three = np.char.str_len(clean.astype(str)) == 3
    dotted = np.where(three, clean, np.char.add(np.char.add(
        np.array([c[:3] for c in clean]), "."), np.array([c[3:] for c in clean])))
    variants = np.column_stack([
        clean, dotted, np.char.lower(clean), np.char.add(clean, " "),
        np.where(three, np.char.add(clean, "X"), clean)])
    pcs = np.array([[pc_code(i, 0), pc_code(i, 1)] for i in range(k)])
    pools = _pc_pools(items, pcs, p["pc_code_zipf"])
    vocab = np.unique(np.concatenate([variants.ravel(), np.array(JUNK_CODES), pcs.ravel(),
                                      pools["code"].to_numpy(str)]))
    vocab = vocab.astype(object)
    deficits = sorted(set(items["efi"]) - {""})
    efi_map = (items["efi"].to_numpy()[:, None] == np.array(deficits)[None, :]).astype(np.float32)
    return Model(
        p=p, items=items, coef=coef, age_lo=lo, age_width=width, age_sex=sex, age_cdf=cdf,
        eth_names=tuple(eth["ethnicity"]), eth_base=base, eth_dep=dep_eff, eth_young=young_eff,
        pool_of=pool_of, pool_cum=pool_cum, pool_code=pool_code,
        variant_vocab=np.searchsorted(vocab, variants.astype(object)).astype(np.int32),
        is_three_char=three, junk_idx=np.searchsorted(vocab, np.array(JUNK_CODES, dtype=object)),
        pc_idx=np.searchsorted(vocab, pcs.astype(object)).astype(np.int32), event_vocab=vocab,
        pc_cum=pools["cum"].to_numpy(), pc_sys=pools["sys"].to_numpy(np.int8), efi_map=efi_map,
        pc_code=np.searchsorted(vocab, pools["code"].to_numpy(object)).astype(np.int32),
        item_coef=np.vstack([coef[c] for c in ("alpha", "beta_age", "gamma_dep", "lambda_latent",
                                                "delta_male")]).astype(np.float32),
    )


def _pc_pools(items: pd.DataFrame, pcs: np.ndarray, zipf: float) -> pd.DataFrame:
    """Primary-care code pools: pool ``i`` (diagnosis) and ``K + i`` (later record) of item ``i``;
    pools ``2K, 2K+1, 2K+2`` for recorded mild, moderate and severe frailty; and pools
    ``standin_offset(K) + i`` / ``+ K + i`` holding item ``i``'s stand-in codes.

    An item with ``snomed_clusters`` draws SNOMED CT codes from those shipped PCD clusters
    (``pcd_snomed``), leaving out codes that also sit in another item's clusters (a psychotic
    depression code is in DEPR_COD and MH_COD: drawing it for depression would put the patient
    on the SMI register too). Codes are ranked by (length, code) -- the short, generic
    International-release concepts first -- and weighted ``1 / rank**zipf``, so a few codes
    carry most rows. An item without a cluster uses its stand-in ``synthetic_pc`` codes.
    """
    pcd = _read_codelist("pcd_snomed")
    k = len(items)
    clusters_of = items["snomed_clusters"].fillna("").str.split().tolist()
    known = set(pcd["condition"])
    unknown = {c for cs in clusters_of for c in cs} - known
    if unknown:
        raise ValueError(f"conditions.csv: snomed_clusters not in pcd_snomed: {sorted(unknown)}")
    rows = []

    def snomed_pool(pool: int, clusters: list[str], exclude: set) -> None:
        codes = pcd.loc[pcd["condition"].isin(clusters), "code"].drop_duplicates()
        codes = codes[~codes.isin(exclude)]
        codes = codes.iloc[np.lexsort((codes.to_numpy(str), codes.str.len().to_numpy()))]
        w = 1.0 / np.arange(1, len(codes) + 1) ** zipf
        rows.append(pd.DataFrame({"pool": pool, "code": codes.to_numpy(), "w": w, "sys": SNOMED}))

    def standin_pool(pool: int, code: str) -> None:
        rows.append(pd.DataFrame({"pool": [pool], "code": [code], "w": [1.0], "sys": [STANDIN]}))

    for i, clusters in enumerate(clusters_of):
        if clusters:
            others = {c for j, cs in enumerate(clusters_of) if j != i for c in cs}
            exclude = set(pcd.loc[pcd["condition"].isin(others - set(clusters)), "code"])
            snomed_pool(i, clusters, exclude)
            snomed_pool(k + i, clusters, exclude)
        else:
            standin_pool(i, pcs[i, 0])
            standin_pool(k + i, pcs[i, 1])
        standin_pool(standin_offset(k) + i, pcs[i, 0])
        standin_pool(standin_offset(k) + k + i, pcs[i, 1])
    for j, cluster in enumerate(FRAILTY_CLUSTERS):
        snomed_pool(2 * k + j, [cluster], set())
    t = pd.concat(rows, ignore_index=True)
    t = t.sort_values("pool", kind="stable").reset_index(drop=True)
    pool = t["pool"].to_numpy()
    within = t.groupby("pool")["w"].cumsum().to_numpy() / t.groupby("pool")["w"].transform("sum").to_numpy()
    last = np.r_[pool[1:] != pool[:-1], True]
    t["cum"] = pool + np.where(last, 1.0, np.minimum(within, 1.0))
    return t


def standin_offset(k: int) -> int:
    """First stand-in pool id (after the K diagnosis, K review and 3 frailty pools)."""
    return 2 * k + len(FRAILTY_CLUSTERS)


# ----------------------------------------------------------------------------- geography


@dataclass(frozen=True)
class Context:
    """Population-level structures shared by all blocks (small: one row per LSOA etc.)."""

    n_patients: int
    random_state: int
    index_day: int  # days since 1970-01-01
    lsoa_codes: np.ndarray
    lsoa_cdf: np.ndarray
    lsoa_imd: np.ndarray
    lsoa_pcn: np.ndarray
    pcn_codes: np.ndarray
    pcn_icb: np.ndarray
    practice_codes: np.ndarray
    practice_cum: np.ndarray
    icb_codes: np.ndarray
    nhs_perm: np.ndarray

    @property
    def n_blocks(self) -> int:
        return -(-self.n_patients // BLOCK_SIZE)

    def block_len(self, b: int) -> int:
        return min(BLOCK_SIZE, self.n_patients - b * BLOCK_SIZE)


def _codes(prefix: str, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)


def build_context(n_patients: int, random_state: int, index_date) -> Context:
    """Geography (ICB > PCN > practice, LSOAs with IMD deciles) and NHS-number permutation."""
    m = load_model().p
    rng = np.random.default_rng([random_state, 1, n_patients])
    n_lsoa = max(1, round(n_patients / m["lsoa_mean_size"]))
    mu = np.log(m["lsoa_mean_size"]) - m["lsoa_sdlog"] ** 2 / 2
    size = np.clip(rng.lognormal(mu, m["lsoa_sdlog"], n_lsoa), m["lsoa_min"], m["lsoa_max"])
    size *= n_patients / size.sum()
    mid = np.cumsum(size) - size / 2
    targets = rng.uniform(m["pcn_min"], m["pcn_max"], int(n_patients / m["pcn_min"]) + 2)
    lsoa_pcn = np.searchsorted(np.cumsum(targets), mid)
    n_pcn = int(lsoa_pcn.max()) + 1
    pcn_size = np.bincount(lsoa_pcn, weights=size, minlength=n_pcn)
    if n_pcn > 1 and pcn_size[-1] < m["pcn_min"] / 2:  # fold a small remainder into its neighbour
        lsoa_pcn[lsoa_pcn == n_pcn - 1] = n_pcn - 2
        n_pcn -= 1
        pcn_size = np.bincount(lsoa_pcn, weights=size, minlength=n_pcn)
    n_icb = max(1, round(n_patients / m["icb_size"]))
    pcn_mid = np.cumsum(pcn_size) - pcn_size / 2
    pcn_icb = np.minimum((pcn_mid / (n_patients / n_icb)).astype(np.int64), n_icb - 1)
    n_prac = rng.integers(int(m["practices_min"]), int(m["practices_max"]) + 1, n_pcn)
    prac_pcn = np.repeat(np.arange(n_pcn), n_prac)
    wts = rng.gamma(3.0, 1.0, len(prac_pcn))
    cum = pd.Series(wts).groupby(prac_pcn).cumsum().to_numpy()
    cum /= np.bincount(prac_pcn, weights=wts)[prac_pcn]
    cum[np.r_[prac_pcn[1:] != prac_pcn[:-1], True]] = 1.0
    score = m["imd_pcn_weight"] * rng.random(n_pcn)[lsoa_pcn] + (1 - m["imd_pcn_weight"]) * rng.random(n_lsoa)
    rank = np.empty(n_lsoa, dtype=np.int64)
    rank[np.argsort(score, kind="stable")] = np.arange(n_lsoa)
    imd = (1 + rank * 10 // n_lsoa).astype(np.int64)
    perm = rng.permutation(TEST_RANGE_CAPACITY)
    return Context(
        n_patients=n_patients, random_state=random_state,
        index_day=int(np.datetime64(naive_timestamp(index_date).normalize().date(), "D").astype(np.int64)),
        lsoa_codes=_codes("L99", n_lsoa, 6), lsoa_cdf=np.cumsum(size) / size.sum(),
        lsoa_imd=imd, lsoa_pcn=lsoa_pcn, pcn_codes=_codes("SYNPCN", n_pcn, 4), pcn_icb=pcn_icb,
        practice_codes=_codes("SYNP", len(prac_pcn), 5), practice_cum=prac_pcn + cum,
        icb_codes=_codes("SYNICB", n_icb, 2), nhs_perm=perm,
    )


# ----------------------------------------------------------------------------- helpers


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-owner counts: the owner of every expanded row and its rank within its owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - starts[owner]


def _gamma_shock(rng, shape: float, n: int) -> np.ndarray:
    """Mean-one log-normal yearly rate shock with the variance of a Gamma(shape) shock."""
    s2 = np.log1p(1.0 / shape)
    return np.exp(np.sqrt(s2) * rng.standard_normal(n) - s2 / 2)


def _pick(rng, m: Model, pool: np.ndarray | int, n: int) -> np.ndarray:
    """Clean-code indices drawn from the given pool(s)."""
    return _pick_u(m, pool, rng.random(n))


def _pick_u(m: Model, pool: np.ndarray | int, u: np.ndarray) -> np.ndarray:
    """Clean-code indices of the given pool(s) at uniforms ``u`` (inverse cdf)."""
    pos = np.searchsorted(m.pool_cum, pool + u, side="right")
    return m.pool_code[np.minimum(pos, len(m.pool_code) - 1)]


def _pick_pc(m: Model, pool: np.ndarray | int, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event-vocabulary index and code system of primary-care pool draws at uniforms ``u``."""
    pos = np.minimum(np.searchsorted(m.pc_cum, pool + u, side="right"), len(m.pc_code) - 1)
    return m.pc_code[pos], m.pc_sys[pos]


def _messy(rng, m: Model, clean_idx: np.ndarray) -> np.ndarray:
    """Event-vocabulary index of each ICD-10 row, with real-world string variants and junk."""
    p = m.p
    n = len(clean_idx)
    u = rng.random(n)
    edges = np.cumsum([p["icd_invalid_rate"], p["icd_dot_rate"], p["icd_lower_rate"],
                       p["icd_space_rate"], p["icd_xpad_rate"]])
    variant = np.searchsorted(edges, u, side="right")  # 0 junk, 1 dot, 2 lower, 3 space, 4 X, 5 clean
    col = np.array([0, 1, 2, 3, 4, 0])[variant]
    out = m.variant_vocab[clean_idx, col]
    junk = variant == 0
    out[junk] = m.junk_idx[rng.integers(0, len(m.junk_idx), int(junk.sum()))]
    return out


@dataclass
class Block:
    register: dict
    events: dict
    activity: dict
    outcomes: dict


def _contacts(rng, m: Model, pt: dict, em: np.ndarray, scale: np.ndarray | float, gp: bool):
    """Per-kind contact counts for one year given the emergency-admission counts."""
    p, n = m.p, len(em)
    age, z, h, nc = pt["age"], pt["z"], pt["h"], np.log1p(pt["n_cond"])
    a40 = (age - 40) / 10
    young = (age < 5) | ((age >= 16) & (age <= 30))
    el = np.exp(p["el_intercept"] + p["el_age"] * np.maximum(a40, -2) + p["el_cond"] * nc
                + p["el_cancer"] * pt["cancer"] + 0.5 * h) * _gamma_shock(rng, p["el_shape"], n)
    ae = np.exp(p["ae_intercept"] + p["ae_dep"] * pt["dep"] + p["ae_latent"] * z
                + p["ae_young"] * young + 0.5 * h) * _gamma_shock(rng, p["ae_shape"], n)
    op = np.exp(p["op_intercept"] + p["op_age"] * a40 + p["op_latent"] * z + p["op_cond"] * nc
                + h) * _gamma_shock(rng, p["op_shape"], n)
    counts = np.zeros((5, n), dtype=np.int64)
    counts[EM] = em
    counts[EL] = rng.poisson(el * scale)
    counts[AE] = rng.poisson(ae * scale)
    counts[OP] = rng.poisson(op * scale)
    if gp:
        g = np.exp(p["gp_intercept"] + p["gp_age"] * a40 + p["gp_female"] * (pt["sex"] == 0)
                   + p["gp_latent"] * z + p["gp_cond"] * nc + h)
        counts[GP] = rng.poisson(g * _gamma_shock(rng, p["gp_shape"], n) * scale)
    return counts


def _rows(rng, m: Model, pt: dict, counts: np.ndarray, start_day: int, costs: bool) -> dict:
    """Expand contact counts to rows (patient, kind, day[, cost, los]); A&E linked to admissions."""
    p = m.p
    pid, kind, day = [], [], []
    for k in range(5):
        owner, _ = _expand(counts[k])
        pid.append(owner)
        kind.append(np.full(len(owner), k, dtype=np.int8))
        # nothing before birth: infants' contacts fall on or after their date of birth
        day.append(np.maximum(start_day + rng.integers(0, YEAR, len(owner)), pt["dob"][owner]))
    linked = rng.random(len(pid[EM])) < p["ae_with_admission"]
    pid[AE] = np.concatenate([pid[AE], pid[EM][linked]])
    day[AE] = np.concatenate([day[AE], day[EM][linked]])
    kind[AE] = np.full(len(pid[AE]), AE, dtype=np.int8)
    out = {"pid": np.concatenate(pid), "kind": np.concatenate(kind), "day": np.concatenate(day)}
    if not costs:
        return out
    age, z = pt["age"], pt["z"]
    o = pid[EM]
    mu = p["em_los_meanlog"] + p["em_los_age"] * np.maximum(age[o] - 50, 0) / 10 + p["em_los_latent"] * z[o]
    los_em = np.where(rng.random(len(o)) < p["em_los_zero"], 0,
                      1 + np.floor(rng.lognormal(mu, p["em_los_sdlog"]))).clip(0, 300)
    cost_em = p["em_cost_base"] + p["em_cost_per_day"] * los_em
    ne = len(pid[EL])
    day_case = rng.random(ne) < p["el_daycase_prob"]
    los_el = np.where(day_case, 0, 1 + np.floor(rng.lognormal(p["el_los_meanlog"], p["el_los_sdlog"], ne)))
    cost_el = np.where(day_case, rng.lognormal(np.log(p["el_daycase_cost"]) - 0.08, 0.4, ne),
                       p["el_ip_base"] + p["el_ip_per_day"] * los_el)
    cost_ae = rng.lognormal(p["ae_cost_meanlog"], p["ae_cost_sdlog"], len(pid[AE]))
    first = rng.random(len(pid[OP])) < p["op_first_share"]
    cost_op = np.where(first, p["op_cost_first"], p["op_cost_fu"])
    cost_gp = np.full(len(pid[GP]), p["gp_cost"])
    out["cost"] = np.round(np.concatenate([cost_em, cost_el, cost_ae, cost_op, cost_gp]), 2)
    out["los"] = np.concatenate([los_em, los_el, np.zeros(len(out["pid"]) - len(o) - ne)]).astype(np.int64)
    return out


def _birthday_days(years_back: np.ndarray, index_day: int) -> np.ndarray:
    """Days since epoch of the date ``years_back`` calendar years before ``index_day``."""
    idx = np.datetime64(index_day, "D")
    year = idx.astype("datetime64[Y]").astype(np.int64)
    month_off = idx.astype("datetime64[M]").astype(np.int64) - year * 12
    day_off = (idx - idx.astype("datetime64[M]")).astype(np.int64)
    months = (year - years_back) * 12 + month_off
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) + day_off


def _register(rng, m: Model, ctx: Context, n: int, start: int) -> dict:
    p, c = m.p, m.coef
    cell = np.minimum(np.searchsorted(m.age_cdf, rng.random(n), side="right"), len(m.age_cdf) - 1)
    sex = m.age_sex[cell].astype(np.int8)
    age = m.age_lo[cell] + np.floor(rng.random(n) * m.age_width[cell]).astype(np.int64)
    top = m.age_lo[cell] >= 90
    age[top] = 90 + np.minimum(np.floor(rng.exponential(3.5, int(top.sum()))), 15).astype(np.int64)
    # born in (birthday age+1 years ago, birthday age years ago]: completed age is exact
    hi = _birthday_days(age, ctx.index_day)
    lo = _birthday_days(age + 1, ctx.index_day)
    dob = hi - np.floor(rng.random(n) * (hi - lo)).astype(np.int64)
    lsoa = np.minimum(np.searchsorted(ctx.lsoa_cdf, rng.random(n), side="right"), len(ctx.lsoa_cdf) - 1)
    pcn = ctx.lsoa_pcn[lsoa]
    prac = np.minimum(np.searchsorted(ctx.practice_cum, pcn + rng.random(n), side="right"),
                      len(ctx.practice_cum) - 1)
    imd = ctx.lsoa_imd[lsoa]
    dep = (5.5 - imd) / 4.5
    logits = (m.eth_base[None, :] + np.outer(dep, m.eth_dep) + np.outer(age < 30, m.eth_young))
    probs = np.exp(logits)
    cdf = np.cumsum(probs, axis=1) / probs.sum(axis=1, keepdims=True)
    eth = (rng.random(n)[:, None] > cdf).sum(axis=1).clip(0, len(m.eth_names) - 1)
    reg = np.maximum(dob, ctx.index_day - np.floor(
        rng.exponential(p["registration_mean_years"] * 365.25, n)).astype(np.int64))
    z = rng.standard_normal(n)
    h = rng.normal(0.0, p["care_seeking_sd"], n)
    male = sex == 1
    ic = m.item_coef
    # the age effect flattens above cond_age_knee (prevalence and deficit counts plateau in the
    # oldest old rather than rising log-linearly for ever)
    knee = p["cond_age_knee"]
    age_eff = np.minimum(age, knee) + p["cond_age_slope_above_knee"] * np.maximum(age - knee, 0)
    logit = ((((age_eff - 50) / 10).astype(np.float32)[:, None] * ic[1] + ic[0])
             + dep.astype(np.float32)[:, None] * ic[2])
    logit += z.astype(np.float32)[:, None] * ic[3]
    logit += male[:, None] * ic[4]  # (n, K) float32
    # u < sigmoid(logit)  <=>  u * (1 + exp(-logit)) < 1
    has = rng.random(logit.shape, dtype=np.float32) * (1 + np.exp(-np.minimum(logit, 30))) < 1
    has &= age[:, None] >= c["min_age"][None, :]
    has &= (c["sex_only"][None, :] < 0) | (c["sex_only"][None, :] == sex[:, None])
    pid = start + np.arange(n, dtype=np.int64)
    nhs = test_range_numbers()[ctx.nhs_perm[pid % TEST_RANGE_CAPACITY]]
    return {
        "patient_id": pid, "nhs_number": nhs, "sex": sex, "dob": dob, "age": age,
        "lsoa": lsoa, "practice": prac, "pcn": pcn, "icb": ctx.pcn_icb[pcn], "imd": imd,
        "ethnicity": eth.astype(np.int8), "registered_from": reg,
        # model state (not output)
        "dep": dep, "z": z, "h": h, "has": has, "n_cond": has.sum(axis=1),
        "cancer": has[:, c["cancer"]].any(axis=1),
    }


def _pc_events(rng, m: Model, pt: dict, index_day: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """Primary-care condition records; also the (patient, item) pairs and diagnosis days."""
    pp, kk = np.nonzero(pt["has"])
    age_days = index_day - pt["dob"][pp]
    span = np.minimum(m.coef["recency_years"][kk] * 365.25, age_days)
    diag = index_day - np.floor(rng.random(len(pp)) * span).astype(np.int64)
    rep = rng.random(len(pp)) < m.p["pc_repeat_prob"]
    rday = diag[rep] + np.floor(rng.random(int(rep.sum())) * (index_day - diag[rep] + 1)).astype(np.int64)
    k = len(m.items)
    # an item whose SNOMED CT cluster covers only part of it (anxiety and/or depression: DEPR_COD
    # is depression only) is coded in SNOMED CT for a share snomed_share of its patients and with
    # the stand-in code for the rest, the same system on both of a patient's records
    alt = standin_offset(k) * (rng.random(len(kk)) >= m.coef["snomed_share"][kk])
    pool = np.concatenate([kk + alt, k + kk[rep] + alt[rep]])
    code, system = _pick_pc(m, pool, rng.random(len(pool)))
    # recorded frailty (GP contract: eFI-based frailty identification at 65+): the eFI band of
    # the patient's deficits, coded within the last year for a band-dependent share
    n_def = (pt["has"].astype(np.float32) @ m.efi_map > 0).sum(axis=1)
    band = np.searchsorted(np.array([0.12, 0.24, 0.36]), n_def / m.efi_map.shape[1], side="left")
    rec_p = np.array([0.0, m.p["frailty_record_mild"], m.p["frailty_record_moderate"],
                      m.p["frailty_record_severe"]])[band]
    fr = np.flatnonzero((pt["age"] >= m.p["frailty_record_min_age"]) & (rng.random(len(band)) < rec_p))
    fcode, fsys = _pick_pc(m, 2 * k + band[fr] - 1, rng.random(len(fr)))
    fday = index_day - np.floor(rng.random(len(fr)) * YEAR).astype(np.int64)
    ev = {"pid": np.concatenate([pp, pp[rep], fr]), "day": np.concatenate([diag, rday, fday]),
          "code": np.concatenate([code, fcode]), "system": np.concatenate([system, fsys])}
    ev["setting"] = np.zeros(len(ev["pid"]), dtype=np.int8)
    return ev, kk, diag


def _hospital_events(rng, m: Model, pt: dict, rows: dict, kk: np.ndarray, diag: np.ndarray,
                     pair_u: np.ndarray) -> dict:
    """ICD-10 diagnoses for hospital episodes (admissions, A&E, outpatients)."""
    p, n = m.p, len(pt["age"])
    kind, pid, day = rows["kind"], rows["pid"], rows["day"]
    ip = (kind == EM) | (kind == EL)
    ip_pid, ip_day, ip_kind = pid[ip], day[ip], kind[ip]
    n_ip = len(ip_pid)
    out_pid, out_day, out_code, out_set = [], [], [], []

    def add(pids, days, codes, setting):
        out_pid.append(pids)
        out_day.append(days)
        out_code.append(codes)
        out_set.append(np.full(len(pids), setting, dtype=np.int8))

    prim_pool = np.where(ip_kind == EM, m.pool_of["emergency_primary"], m.pool_of["elective_primary"])
    add(ip_pid, ip_day, _pick(rng, m, prim_pool, n_ip), 1)
    # recorded long-term conditions: every condition the patient has, diagnosed by then
    n_items = pt["n_cond"]
    offsets = np.cumsum(n_items) - n_items
    cnt = n_items[ip_pid]
    epi, rank = _expand(cnt)
    pair = offsets[ip_pid][epi] + rank
    item = kk[pair]
    # a condition is codable in hospital for a fixed share of patients (hospital_record_prob, drawn
    # once per patient and condition); codable ones are coded on each episode with a probability
    # that is lower on elective (mostly day-case) episodes, so repeat admissions do not end up
    # coding every condition
    ep_prob = np.where(ip_kind == EM, p["hospital_record_emergency"], p["hospital_record_elective"])
    keep = ((diag[pair] <= ip_day[epi]) & (pair_u[pair] < m.coef["hospital_record_prob"][item])
            & (rng.random(len(pair)) < ep_prob[epi]))
    add(ip_pid[epi[keep]], ip_day[epi[keep]], _pick(rng, m, item[keep], int(keep.sum())), 1)
    # frailty-type secondaries: mostly on emergency admissions of older, frailer people, and
    # drawn largely from a short personal list, so repeat admissions repeat the same syndromes
    age = pt["age"][ip_pid]
    fmean = p["frailty_secondary_mean"] * np.exp(np.clip(
        p["frailty_secondary_age"] * (age - 75) + p["frailty_secondary_latent"] * pt["z"][ip_pid],
        -6, p["frailty_secondary_cap"])) * np.where(ip_kind == EM, 1.0, p["frailty_secondary_elective"])
    e, _ = _expand(rng.poisson(fmean))
    fp = ip_pid[e]
    u = rng.random(len(e))
    own = rng.random(len(e)) < p["frailty_secondary_reuse"]
    menu = pt["frailty_menu"]
    u[own] = menu[fp[own], rng.integers(0, menu.shape[1], int(own.sum()))]
    add(fp, ip_day[e], _pick_u(m, m.pool_of["frailty_secondary"], u), 1)
    e, _ = _expand(rng.poisson(p["misc_secondary_mean"], n_ip))
    add(ip_pid[e], ip_day[e], _pick(rng, m, m.pool_of["misc_secondary"], len(e)), 1)
    for k, pool, prob, setting in ((AE, "ae_dx", p["ae_coded_prob"], 3),
                                   (OP, "op_dx", p["op_coded_prob"], 2)):
        sel = (kind == k) & (rng.random(len(kind)) < prob)
        add(pid[sel], day[sel], _pick(rng, m, m.pool_of[pool], int(sel.sum())), setting)
    clean = np.concatenate(out_code)
    del n
    return {"pid": np.concatenate(out_pid), "day": np.concatenate(out_day),
            "code": _messy(rng, m, clean).astype(np.int32), "system": np.zeros(len(clean), np.int8),
            "setting": np.concatenate(out_set)}


def _em_prob(p: dict, lp: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Yearly probability of any emergency admission, softly capped at ``em_p_max``: the
    logistic ``q`` becomes ``q / (1 + q (1 / em_p_max - 1))``, about ``q`` when ``q`` is small
    and ``em_p_max`` when ``q`` is 1 (real admission-risk models top out well below 1)."""
    q = _sigmoid(lp + p["em_prior"] * np.log1p(prior))
    return q / (1.0 + q * (1.0 / p["em_p_max"] - 1.0))


def _em_counts(rng, m: Model, pt: dict, lp: np.ndarray, prior: np.ndarray) -> tuple:
    p = m.p
    prob = _em_prob(p, lp, prior)
    any_ = rng.random(len(lp)) < prob
    extra = rng.poisson(p["em_extra_mu"] * np.exp(p["em_extra_latent"] * pt["z"]))
    return np.where(any_, 1 + extra, 0), prob


def _sorted(table: dict) -> dict:
    order = np.argsort(table["pid"].astype(np.uint16), kind="stable")  # radix sort: BLOCK_SIZE < 2**16
    return {k: v[order] for k, v in table.items()}


def generate_block(ctx: Context, b: int) -> Block:
    """Generate block ``b`` of the population (deterministic in random_state and b)."""
    m = load_model()
    p, c = m.p, m.coef
    n, start, day0 = ctx.block_len(b), b * BLOCK_SIZE, ctx.index_day
    rng = np.random.default_rng([ctx.random_state, 2, b])
    pt = _register(rng, m, ctx, n, start)
    age, male, z, has = pt["age"], pt["sex"] == 1, pt["z"], pt["has"]
    lp = (p["em_intercept"] + p["em_age40"] * np.maximum(age - 40, 0) / 10
          + p["em_age75"] * np.maximum(age - 75, 0) / 10 + p["em_child"] * (age < 5)
          + p["em_dep"] * pt["dep"] + p["em_male"] * male + p["em_latent"] * z + has @ c["adm_beta"])
    em3, _ = _em_counts(rng, m, pt, lp, np.zeros(n))
    em2, _ = _em_counts(rng, m, pt, lp, em3)
    em1, _ = _em_counts(rng, m, pt, lp, em2)
    rows2 = _rows(rng, m, pt, _contacts(rng, m, pt, em2, 1.0, gp=False), day0 - 2 * YEAR, costs=False)
    rows1 = _rows(rng, m, pt, _contacts(rng, m, pt, em1, 1.0, gp=True), day0 - YEAR, costs=True)

    pc, kk, diag = _pc_events(rng, m, pt, day0)
    pt["frailty_menu"] = rng.random((n, int(p["frailty_secondary_menu"])))
    pair_u = rng.random(len(kk))
    hosp = [_hospital_events(rng, m, pt, r, kk, diag, pair_u) for r in (rows2, rows1)]
    events = _sorted({k: np.concatenate([pc[k]] + [h[k] for h in hosp]) for k in pc})

    # outcomes over the 365 days after index_date
    p_em = _em_prob(p, lp, em1)
    # death: the patient-level logit plus unobserved heterogeneity (a hidden N(0, de_hidden_sd)
    # shock), so death is not a near-deterministic function of age and conditions; p_death is
    # the probability given everything but that shock (probit approximation of its average)
    de_lp = (p["de_intercept"] + p["de_age"] * (age - 50) / 10
             + p["de_age75"] * np.maximum(age - 75, 0) / 10 + p["de_latent"] * z
             + p["de_male"] * male + has @ c["death_beta"] + p["de_prior"] * np.log1p(em1))
    de_sd = p["de_hidden_sd"]
    p_de = _sigmoid(de_lp / np.sqrt(1.0 + np.pi * de_sd ** 2 / 8.0))
    em_out = rng.random(n) < p_em
    death = rng.random(n) < _sigmoid(de_lp + de_sd * rng.standard_normal(n))
    t_em = np.ceil(-np.log1p(-rng.random(n) * p_em) / (-np.log1p(-p_em) / YEAR)).clip(1, YEAR)
    t_de = np.ceil(-np.log1p(-rng.random(n) * p_de) / (-np.log1p(-p_de) / YEAR)).clip(1, YEAR)
    late = em_out & death & (t_em > t_de)
    t_em = np.where(late, np.ceil(rng.random(n) * t_de).clip(1, None), t_em)
    follow = np.where(death, t_de, float(YEAR))
    extra = rng.poisson(p["em_extra_mu"] * np.exp(p["em_extra_latent"] * z) * follow / YEAR)
    em0 = np.where(em_out, 1 + extra, 0)
    rows0 = _rows(rng, m, pt, _contacts(rng, m, pt, em0, 1.0, gp=True), day0 + 1, costs=True)
    total = np.bincount(rows0["pid"], weights=rows0["cost"], minlength=n)
    outcomes = {
        "patient_id": pt["patient_id"], "emergency_admission": em_out,
        "days_to_emergency_admission": np.where(em_out, t_em, np.nan), "death": death,
        "days_to_death": np.where(death, t_de, np.nan), "end_of_follow_up_days": follow,
        "total_cost": np.round(total, 2), "p_emergency_admission": p_em, "p_death": p_de,
    }
    act = _sorted({k: rows1[k] for k in ("pid", "day", "kind", "cost", "los")})
    for t in (events, act):
        t["pid"] = t["pid"].astype(np.int64) + start
    register = {k: v for k, v in pt.items()
                if k not in ("dep", "z", "h", "has", "n_cond", "cancer", "frailty_menu")}
    register["_n_cond"] = pt["n_cond"]
    register["_cms"] = has[:, c["cms"]].sum(axis=1)
    register["_em_prior"] = em1
    return Block(register=register, events=events, activity=act, outcomes=outcomes)
