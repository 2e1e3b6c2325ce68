"""The re-identification attack suite (issue 13 §1): each attack first succeeds with its
defence off (so the test can fail), then is refused with the defence on.

A small cohort built for the attacks: 40 people; person X (S00) and 9 others have HP:0001250
(seizure), only the 9 also have HP:0001626. (The issue's example used HP:0000707, an ancestor of
seizure: with descendant terms expanded, as the spec says, it selects all 10.) X and 10 others
have HP:0000365, split 5 + 5 by HP:0002315 and HP:0001513 (the three-group tracker). Variants:
``VX`` carried by X and 10 people outside every group (so each group's answer is X's genotype),
a singleton of X, alleles with 4 and 5 carriers, and a common one. The token and visa attacks
are in test_beacon_security.py and test_beacon_api.py (forged, expired, wrong-audience,
``none``/HMAC tokens, foreign visas).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam
import pytest
from beacon_fixtures import BASE, body, check
from fastapi.testclient import TestClient

from sandgrain.beacon.groups import GroupAudit, smallest_atom
from sandgrain.beacon.ingest import ingest
from sandgrain.beacon.risk import query_cost
from sandgrain.beacon.service import BeaconService
from sandgrain.config import Settings
from sandgrain.errors import InputError
from sandgrain.storage import Store
from sandgrain.testing.auth import LoopbackIdP
from sandgrain.web.app import create_app

N = 40
SAMPLES = [f"S{i:02d}" for i in range(N)]
X = 0
SEIZURE, OTHER = "HP:0001250", "HP:0001626"  # seizure; cardiovascular (unrelated)
HEARING, HEADACHE, OBESITY = "HP:0000365", "HP:0002315", "HP:0001513"
TERMS = {
    SEIZURE: range(0, 10),
    OTHER: range(1, 10),
    HEARING: [0, *range(10, 20)],
    HEADACHE: range(10, 15),
    OBESITY: range(15, 20),
}
#: position → carriers (heterozygous)
VARIANTS = {
    1000: [X, *range(20, 30)],  # VX: X and 10 people in no group
    2000: [X],  # X's singleton
    3000: [21, 22, 23, 24],  # 4 carriers: rare
    4000: [21, 22, 23, 24, 25],  # 5 carriers: shown
    5000: list(range(5, 40)),  # common
}
VX = "22-1000-A-G"
PUB, REG = "attack-public", "attack-registered"


def _write_cohort(root: Path) -> tuple[Path, Path]:
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=22,length=51304566>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(SAMPLES),
    ]
    for pos, carriers in VARIANTS.items():
        gts = ["0/1" if i in carriers else "0/0" for i in range(N)]
        lines.append(f"22\t{pos}\t.\tA\tG\t.\tPASS\t.\tGT\t" + "\t".join(gts))
    plain = root / "cohort.vcf"
    plain.write_text("\n".join(lines) + "\n")
    vcf = Path(pysam.tabix_index(str(plain), preset="vcf", force=True))
    people = ["id\tsex\tdiseases\tphenotypicFeatures"]
    for i, s in enumerate(SAMPLES):
        mine = [t for t, who in TERMS.items() if i in who]
        sex = "female" if i % 2 else "male"
        people.append(f"{s}\t{sex}\t\t" + ";".join(f"{t}|x" for t in mine))
    individuals = root / "individuals.tsv"
    individuals.write_text("\n".join(people) + "\n")
    return vcf, individuals


@dataclass
class Cohort:
    root: Path
    store: Store
    settings: Settings
    idp: LoopbackIdP
    n: int = 0

    def client(self, ip: str = "testclient", **config) -> tuple[TestClient, BeaconService]:
        """A fresh app with its own database (answered groups, budgets, audit)."""
        self.n += 1
        config.setdefault("audit_db", str(self.root / f"db-{self.n}.sqlite"))
        config.setdefault("budget_limit", 0)
        app = create_app(self.settings)
        security = self.idp.config(**config)
        app.state.beacon = BeaconService(self.settings, stores=[self.store], security=security)
        return TestClient(app, client=(ip, 50000)), app.state.beacon


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("reident")
    vcf, individuals = _write_cohort(root)
    store = Store(str(root / "store"))
    for ds, access in ((PUB, "public"), (REG, "registered")):
        ingest(
            store, ds, vcf, assembly="GRCh37", individuals=individuals, access=access,
            executor="serial",
        )  # fmt: skip
    settings = Settings(home=str(root / "home"), store_url=store.url, executor="serial")
    with LoopbackIdP() as idp:
        yield Cohort(root, store, settings, idp)


def post(client, path, params=None, *, token=None, status=200, **kw) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = client.post(BASE + path, json=body(params, **kw), headers=headers)
    assert r.status_code == status, (r.status_code, r.text[:400])
    return check(r.json(), r.status_code)


def vx(pos: int = 1000) -> dict:
    return {"referenceName": "22", "start": [pos - 1], "referenceBases": "A", "alternateBases": "G"}


def exists(doc: dict) -> bool:
    return doc["responseSummary"]["exists"]


# -- 1. the differencing attack --------------------------------------------------------------------
def test_differencing_attack_works_without_the_defence(cohort):
    """The control: with only the group-size check, the issue's two queries reveal X's genotype
    (both groups have ≥ 5 people)."""
    client, _ = cohort.client(group_tracking="off", rare_min_carriers=0)
    path = f"/datasets/{PUB}/g_variants"
    assert exists(post(client, path, vx(), filters=[SEIZURE]))
    assert not exists(post(client, path, vx(), filters=[SEIZURE, OTHER]))
    # … and through /g_variants/{id}/individuals: 1 carrier (shown as 5) against 0
    ind = f"/g_variants/{VX}/individuals"
    with_x = post(client, ind, filters=[SEIZURE], granularity="count")
    without = post(client, ind, filters=[SEIZURE, OTHER], granularity="count")
    assert with_x["responseSummary"]["numTotalResults"] == 5
    assert without["responseSummary"]["numTotalResults"] == 0


@pytest.mark.parametrize("endpoint", ["g_variants", "individuals"])
def test_differencing_attack_is_refused(cohort, endpoint):
    client, _ = cohort.client(rare_min_carriers=0)  # the group defence alone
    if endpoint == "g_variants":
        path, params = f"/datasets/{PUB}/g_variants", vx()
    else:
        path, params = f"/g_variants/{VX}/individuals", None
    post(client, path, params, filters=[SEIZURE], granularity="count")
    doc = post(client, path, params, filters=[SEIZURE, OTHER], status=403)
    assert "differencing" in doc["error"]["errorMessage"]
    # in the other order too: the 9 first, then the 10
    client, _ = cohort.client(rare_min_carriers=0)
    post(client, path, params, filters=[SEIZURE, OTHER], granularity="count")
    post(client, path, params, filters=[SEIZURE], status=403)


def test_three_group_tracker_is_refused(cohort):
    """A ∖ (B ∪ C) = {X} while every pairwise difference has 6 people."""
    client, _ = cohort.client(group_tracking="off", rare_min_carriers=0)
    path = f"/datasets/{PUB}/g_variants"
    answers = [exists(post(client, path, vx(), filters=f)) for f in _tracker()]
    assert answers == [True, False, False]  # the control: X carries VX
    client, _ = cohort.client(rare_min_carriers=0)
    post(client, path, vx(), filters=_tracker()[0])
    post(client, path, vx(), filters=_tracker()[1])
    post(client, path, vx(), filters=_tracker()[2], status=403)
    # a filter set answered before is still answered
    post(client, path, vx(), filters=_tracker()[1])


def _tracker() -> list[list[str]]:
    return [[HEARING], [HEARING, HEADACHE], [HEARING, OBESITY]]


def test_colluding_callers(cohort):
    """Per-requester tracking lets two IP addresses split the attack; global tracking (the
    default) does not."""
    path = f"/datasets/{PUB}/g_variants"
    for tracking, second in (("requester", 200), ("global", 403)):
        one, svc = cohort.client(ip="10.0.0.1", group_tracking=tracking, rare_min_carriers=0)
        two = TestClient(one.app, client=("10.0.0.2", 50000))
        post(one, path, vx(), filters=[SEIZURE])
        post(two, path, vx(), filters=[SEIZURE, OTHER], status=second)


def test_record_level_callers_are_not_tracked(cohort):
    """Who may see individuals is not refused groups (the records say more anyway)."""
    client, _ = cohort.client(max_granularity={"public": "record"}, rare_min_carriers=0)
    path = f"/datasets/{PUB}/g_variants"
    post(client, path, vx(), filters=[SEIZURE])
    post(client, path, vx(), filters=[SEIZURE, OTHER])


def test_groups_are_shared_by_server_processes(cohort):
    """Two services on one database (two server processes) share the answered groups."""
    db = str(cohort.root / "shared-groups.sqlite")
    one, _ = cohort.client(audit_db=db, rare_min_carriers=0)
    two, _ = cohort.client(audit_db=db, rare_min_carriers=0)
    path = f"/datasets/{PUB}/g_variants"
    post(one, path, vx(), filters=[SEIZURE])
    post(two, path, vx(), filters=[SEIZURE, OTHER], status=403)


def test_smallest_atom_matches_a_plain_count():
    """The atom computation against a plain twin: people grouped by their membership tuple."""
    rng = np.random.default_rng(13)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        universe = rng.random(n) < 0.9
        groups = [rng.random(n) < rng.random() for _ in range(int(rng.integers(0, 9)))]
        cells: dict[tuple, int] = {}
        for i in range(n):
            if universe[i]:
                sig = tuple(bool(g[i]) for g in groups)
                cells[sig] = cells.get(sig, 0) + 1
        assert smallest_atom(universe, groups) == (min(cells.values()) if cells else 0)


def test_group_audit_bounds_the_groups_it_keeps(tmp_path):
    audit = GroupAudit(str(tmp_path / "g.sqlite"), max_groups=2)
    universe = np.ones(30, dtype=bool)

    def mask_of(filters):
        m = np.zeros(30, dtype=bool)
        m[: 10 * len(filters)] = True
        return m

    check = dict(min_count=5, universe=universe, mask_of=mask_of)
    audit.check("ds@1", "*", ["a"], **check)
    audit.check("ds@1", "*", ["a", "b"], **check)
    audit.check("ds@1", "*", ["b", "a"], **check)  # the same set: answered before
    with pytest.raises(Exception, match="the most it tracks"):
        audit.check("ds@1", "*", ["c"], **check)
    assert audit.answered("ds@1", "*") == [["a"], ["a", "b"]]
    audit.check("ds@2", "*", ["c"], **check)  # another version, other groups
    audit.close()


# -- 2. rare alleles -------------------------------------------------------------------------------
def test_rare_alleles_are_answered_as_absent_at_public_tier(cohort):
    client, _ = cohort.client()  # defaults: hide alleles with fewer than 5 carriers
    path = f"/datasets/{PUB}/g_variants"
    singleton = post(client, path, vx(2000), granularity="count")
    absent = post(client, path, {**vx(2000), "alternateBases": "T"}, granularity="count")
    assert singleton["responseSummary"] == absent["responseSummary"] == {
        "exists": False, "numTotalResults": 0,
    }  # fmt: skip
    strip = lambda d: json.dumps({k: v for k, v in d.items() if k != "meta"}, sort_keys=True)  # noqa: E731
    assert strip(singleton).replace('"T"', '"G"') == strip(absent).replace('"T"', '"G"')
    assert not exists(post(client, path, vx(3000)))  # 4 carriers
    assert exists(post(client, path, vx(4000)))  # 5 carriers
    # a range query counts only the alleles shown: 1000 (11), 4000 (5), 5000 (35)
    region = {"referenceName": "22", "start": [0], "end": [10_000]}
    doc = post(client, path, region, granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == 3
    # the control: with the rule off, the singleton answers yes
    off, _ = cohort.client(rare_min_carriers=0)
    assert exists(post(off, path, vx(2000)))


def test_rare_alleles_are_counted_in_the_answering_group(cohort):
    """VX has 11 carriers, but only X among the people with seizures: within that group it is
    a singleton, hidden — which also stops the differencing attack with tracking off."""
    client, _ = cohort.client(group_tracking="off")
    path = f"/datasets/{PUB}/g_variants"
    assert exists(post(client, path, vx()))
    assert not exists(post(client, path, vx(), filters=[SEIZURE]))
    assert not exists(post(client, path, vx(), filters=[SEIZURE, OTHER]))
    ind = post(client, f"/g_variants/{VX}/individuals", filters=[SEIZURE], granularity="count")
    assert ind["responseSummary"]["numTotalResults"] == 0


def test_repeated_rare_allele_probing_is_stopped(cohort):
    """A caller whose queries keep touching rare alleles is refused every genomic query once
    past ``rare_query_limit`` — the refusal does not say which allele was rare."""
    client, _ = cohort.client(rare_query_limit=3)
    path = f"/datasets/{PUB}/g_variants"
    for _ in range(3):
        assert not exists(post(client, path, vx(2000)))
    doc = post(client, path, vx(5000), status=429)  # even a common allele now
    assert "rare alleles" in doc["error"]["errorMessage"]
    # common alleles alone never reach the limit
    client, _ = cohort.client(rare_query_limit=3)
    for _ in range(10):
        assert exists(post(client, path, vx(5000)))


def test_risk_budget_charges_rare_alleles_more(cohort):
    """Allele frequencies here: 5,000 at 35/80, 4,000 at 5/80 = 0.0625. With
    ``rare_cost_frequency`` 0.2, the common allele costs 1 and 4,000 costs 1 + ⌈log2(3.2)⌉ = 3."""
    assert query_cost(35 / 80, rare_frequency=0.2, max_cost=8) == 1
    assert query_cost(5 / 80, rare_frequency=0.2, max_cost=8) == 3
    assert query_cost(1e-9, rare_frequency=0.2, max_cost=8) == 8
    assert query_cost(None, rare_frequency=0.2, max_cost=8) == 1
    client, svc = cohort.client(risk_budget=16, max_query_cost=4, rare_cost_frequency=0.2)
    path = f"/datasets/{PUB}/g_variants"
    key = "risk|ip:testclient"
    post(client, path, vx(5000))
    assert svc.guard.risk.used(key)[0] == 1
    post(client, path, vx(4000))
    assert svc.guard.risk.used(key)[0] == 4
    post(client, path, vx(2000))  # hidden: costs what an absent allele costs
    assert svc.guard.risk.used(key)[0] == 5
    for _ in range(2):
        post(client, path, vx(4000))
    assert svc.guard.risk.used(key)[0] == 11
    post(client, path, vx(5000))  # 12 used: room for a costliest (4) answer
    post(client, path, vx(5000))  # 13 used: 13 + 4 > 16, no more room
    assert svc.guard.risk.used(key)[0] == 13
    doc = post(client, path, vx(5000), status=429)
    assert "risk budget" in doc["error"]["errorMessage"]


# -- 3. which count is protected; what each tier reveals -----------------------------------------
def test_counts_of_people_are_protected_counts_of_variants_are_not(cohort):
    client, _ = cohort.client(rare_min_carriers=0)
    path = f"/datasets/{PUB}/g_variants"
    one_variant = {"referenceName": "22", "start": [1500], "end": [2500]}
    doc = post(client, path, one_variant, granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == 1  # one variant, not blurred to 5
    people = post(client, "/g_variants/22-2000-A-G/individuals", granularity="count")
    assert people["responseSummary"]["numTotalResults"] == 5  # one person, shown as 5
    assert people["responseSummary"].get("countAdjustedTo") == [5] or any(
        rs.get("countAdjustedTo") == [5] for rs in people["response"]["resultSets"]
    )


def test_registered_datasets_default_to_count(cohort):
    client, _ = cohort.client()
    token = cohort.idp.token("reader")
    doc = post(client, f"/datasets/{REG}/g_variants", vx(5000), token=token, granularity="record")
    assert doc["meta"]["returnedGranularity"] == "count"
    assert all(not rs.get("results") for rs in doc["response"]["resultSets"])  # no carriers
    # record level is an explicit choice
    client, _ = cohort.client(max_granularity={"registered": "record"})
    doc = post(client, f"/datasets/{REG}/g_variants", vx(5000), token=token, granularity="record")
    assert doc["meta"]["returnedGranularity"] == "record"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"group_tracking": "sometimes"}, "group_tracking"),
        ({"rare_hidden_tiers": ["secret"]}, "unknown tier"),
        ({"rare_allele_frequency": 1.5}, "below 1"),
        ({"risk_budget": 3, "max_query_cost": 16}, "at least max_query_cost"),
        ({"rare_query_limit": -1}, "rare_query_limit"),
    ],
)
def test_privacy_settings_are_checked(cohort, setting, message):
    with pytest.raises(InputError, match=message):
        cohort.idp.config(**setting)
