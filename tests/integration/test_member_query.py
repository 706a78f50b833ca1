"""MemberQuery over the member directory (libcommon member_query), against SQLite.

Runs tests/programs/member-query over tests/data/member_query/members.jsonl
(300 members from member-gen --seed 19) and checks, for every filter
family, that the engine finds exactly the members the same filter written
as SQL finds over the same data in SQLite, and the ids kept in
tests/data/member_query/golden.json; invalid queries are refused with the
field named; every sort order and direction; cursor paging across a reload
(no member skipped or repeated); and a Hypothesis property test: random
MemberQuery combinations give the same member set on both sides.
"""
import json
import os
import random
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import batch_eligibility_pb2 as be
import eligibility_pb2 as el
from conftest import REPO
from member_query_util import (DAY, NOW, Resolver, age_sql, col, ids, in_list, load_sqlite,
                               now_ms, q, set_any, to_ms)

DATA = os.path.join(REPO, "tests", "data", "member_query")
MEMBERS = os.path.join(DATA, "members.jsonl")
T0 = now_ms()


@pytest.fixture(scope="module")
def res():
    r = Resolver(MEMBERS)
    yield r
    r.close()


@pytest.fixture(scope="module")
def db():
    return load_sqlite(MEMBERS)


def ts(v):
    ms = to_ms(v) if isinstance(v, str) else v
    return el.Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1000000)


def dur(seconds):
    return el.Duration(seconds=seconds)


MQ = be.MemberQuery
IP = be.InsurancePlanFilter
FR = be.FamilyRelationshipFilter
DF = be.DemographicsFilter
EF = be.EngagementFilter
CJ = be.CareJourneyFilter
RE = be.RecentEventFilter
CF = be.CoverageFilter


def events_sql(cats=(), within=None, before=None, min_count=None, has=(), types=(), after=None):
    """The RecentEventFilter rules of docs/member-query.md as SQL (after, before: ms)."""
    win = []
    lo = None if within is None else T0 - within * 1000
    if after is not None:
        lo = after if lo is None else max(lo, after)
    if lo is not None:
        win.append("at_s * 1000 >= %d" % lo)
    if before is not None:
        win.append("at_s * 1000 < %d" % before)
    w = " AND ".join(["ev.member_id = m.member_id"] + win)
    parts = []
    sel = w + (" AND category IN (%s)" % ",".join(map(str, cats)) if cats else "") + \
        (" AND type IN (%s)" % ",".join(q(t) for t in types) if types else "")
    if min_count is not None:
        parts.append("(SELECT COUNT(*) FROM ev WHERE %s) >= %d" % (sel, min_count))
    elif cats or types or lo is not None or before is not None:
        parts.append("EXISTS (SELECT 1 FROM ev WHERE %s)" % sel)
    for t, want in has:
        e = "EXISTS (SELECT 1 FROM ev WHERE %s AND type = %s)" % (w, q(t))
        parts.append(e if want else "NOT " + e)
    return " AND ".join(parts)


def age_between(lo, hi=None):
    a = age_sql(T0)
    return "(%s >= %d%s)" % (a, lo, "" if hi is None else " AND %s <= %d" % (a, hi))


# name -> (MemberQuery, the same filter as SQL); one or more per family
GOLDEN = {
    "sponsor_population": (MQ(sponsor_ids=["SP0001", "SP0042", "SP0100"],
                              population_ids=["POP001", "POP020"]),
                           "sponsor_id IN ('SP0001','SP0042','SP0100') AND "
                           "population_id IN ('POP001','POP020')"),
    "benefit_contract": (MQ(benefit_contract_filter=be.BenefitContractFilter(
        healthcare_service_ids=["BH_THERAPY", "EMO"], active_at=ts("2025-06-01T00:00:00Z"))),
        set_any("healthcare_services", ["BH_THERAPY", "EMO"]) +
        " AND contract_start <= %d AND contract_end > %d" % (
            to_ms("2025-06-01T00:00:00Z"), to_ms("2025-06-01T00:00:00Z") - DAY)),
    "benefit_top": (MQ(benefit_contract_filter=be.BenefitContractFilter(
        healthcare_service_ids=["VPC"], is_top_benefit=True)),
        set_any("healthcare_services", ["VPC"]) + " AND " + set_any("top_benefits", ["VPC"])),
    "feature_options": (MQ(feature_options=[
        be.FeatureOptionFilter(name="provider_instructions", type=2, value="special_network",
                               operator=1),
        be.FeatureOptionFilter(name="max_visits_per_year", type=3, value="10", operator=4),
        be.FeatureOptionFilter(name="chat_available", type=1, value="true", operator=1)]),
        "\"feature_options.provider_instructions\" = 'special_network' AND "
        "\"feature_options.max_visits_per_year\" > 10 AND \"feature_options.chat_available\" = 1"),
    "feature_flags": (MQ(required_feature_flags={"rte_v2": True, "paperless": False}),
                      set_any("feature_flags", ["rte_v2"]) + " AND NOT " +
                      set_any("feature_flags", ["paperless"])),
    "predicate": (MQ(predicate_filter=be.PredicateFilter(
        expression="AGE >= 18 AND STATE IN ('CA', 'NY', 'TX') AND "
                   "HAS_MENTAL_HEALTH_COVERAGE = true",
        healthcare_service_id="BH_THERAPY", require_all_predicates=True)),
        age_between(18) + " AND state IN ('CA','NY','TX') AND has_mental_health_coverage = 1 "
        "AND " + set_any("healthcare_services", ["BH_THERAPY"])),
    "predicate_any": (MQ(predicate_filter=be.PredicateFilter(
        expression="STATE = 'CA' AND IS_VIP = true", require_all_predicates=False)),
        "(state = 'CA' OR is_vip = 1)"),
    "rte_and_checks": (MQ(has_rte_enabled=True,
                          eligibility_checked_after=ts("2025-11-20T00:00:00Z"),
                          eligibility_checked_before=ts("2025-12-20T00:00:00Z")),
                       "has_rte_enabled = 1 AND last_eligibility_check_at >= %d AND "
                       "last_eligibility_check_at < %d" % (to_ms("2025-11-20T00:00:00Z"),
                                                           to_ms("2025-12-20T00:00:00Z"))),
    "coverage": (MQ(coverage_filter=CF(has_dual_coverage=True, coverage_types=[1, 2],
                                       coverage_statuses=[1])),
                 "has_dual_coverage = 1 AND coverage_type IN ('PRIMARY','SECONDARY') AND "
                 "coverage_status = 'ACTIVE'"),
    "coverage_active_at": (MQ(coverage_filter=CF(coverage_active_at=ts(T0),
                                                 payer_names=["Aetna", "Cigna"])),
                           "coverage_start <= %d AND coverage_end > %d AND "
                           "payer_name IN ('Aetna','Cigna')" % (T0, T0 - DAY)),
    "insurance_plan": (MQ(insurance_plan_filter=IP(plan_types=[5], has_hsa=True,
                                                   min_individual_deductible=3000.0)),
                       "plan_type = 'HDHP' AND has_hsa = 1 AND individual_deductible >= 3000"),
    "insurance_plan_renewal": (MQ(insurance_plan_filter=IP(renewing_within_days=True,
                                                           days_until_renewal=60,
                                                           is_self_funded=False)),
                               "plan_renewal_date >= %d AND plan_renewal_date <= %d AND "
                               "is_self_funded = 0" % (T0 - DAY + 1, T0 + 60 * DAY)),
    "family": (MQ(family_filter=FR(member_roles=[1], has_dependents=True, min_family_size=3)),
               "member_role = 'SUBSCRIBER' AND dependents_count >= 1 AND family_size >= 3"),
    "family_dependent": (MQ(family_filter=FR(is_dependent=True, relationships=[1, 2])),
                         "relationship IN ('SPOUSE','CHILD') AND relationship <> 'SELF'"),
    "demographics": (MQ(demographics_filter=DF(age_groups=[3, 4], states=["CA", "TX", "FL"],
                                               preferred_spoken_languages=["en", "es"])),
                     "(%s OR %s) AND state IN ('CA','TX','FL') AND language IN ('en','es')" % (
                         age_between(35, 54), age_between(55, 64))),
    "demographics_zip": (MQ(demographics_filter=DF(zip_codes=["94", "100"], min_age=30,
                                                   max_age=60)),
                         "(zip_code LIKE '94%%' OR zip_code LIKE '100%%') AND %s" %
                         age_between(30, 60)),
    "last_active_usage": (MQ(last_active_after=ts("2025-12-01T00:00:00Z"),
                             min_app_usage_probability=0.4),
                          "last_login_at >= %d AND app_usage_probability >= 0.4" %
                          to_ms("2025-12-01T00:00:00Z")),
    "engagement": (MQ(engagement_filter=EF(cohorts=[1, 2], has_upcoming_appointments=True)),
                   "engagement_cohort IN ('HIGHLY_ENGAGED','REGULARLY_ENGAGED') AND "
                   "upcoming_appointment_at >= %d" % T0),
    "engagement_no_appointment": (MQ(engagement_filter=EF(has_upcoming_appointments=False,
                                                          used_features=["messaging"])),
                                  "(upcoming_appointment_at IS NULL OR "
                                  "upcoming_appointment_at < %d) AND %s" % (
                                      T0, set_any("used_features", ["messaging"]))),
    "care_journey": (MQ(care_journey_filter=CJ(has_active_prescriptions=True,
                                               chronic_conditions=["DIABETES", "HYPERTENSION"],
                                               has_open_care_gaps=True)),
                     "has_active_prescriptions = 1 AND " +
                     set_any("chronic_conditions", ["DIABETES", "HYPERTENSION"]) + " AND " +
                     set_any("care_gaps")),
    "recent_events": (MQ(recent_event_filter=RE(event_categories=[1, 4], within_last=dur(7 * 86400),
                                                min_event_count=2, has_signed_in_recently=True)),
                      events_sql(cats=(1, 4), within=7 * 86400, min_count=2,
                                 has=[("domain.authentication.v1.SIGNIN", True)])),
    "recent_events_pattern": (MQ(recent_event_filter=RE(is_decreasing_activity=True,
                                                        events_before=ts("2025-12-01T00:00:00Z"),
                                                        event_categories=[1])),
                              "activity_trend = 'DECREASING' AND " +
                              events_sql(cats=(1,), before=to_ms("2025-12-01T00:00:00Z"))),
    # event filters the events index answers (window ends to the ms, type lists, counts)
    "events_index_window": (MQ(recent_event_filter=RE(
        has_enrolled_recently=True, events_after=ts("2025-12-17T09:00:00Z"),
        events_before=ts("2025-12-22T09:00:00Z"))),
        events_sql(after=to_ms("2025-12-17T09:00:00Z"), before=to_ms("2025-12-22T09:00:00Z"),
                   has=[("domain.enrollment.v1.ENROLLED", True)])),
    "events_index_window_1ms": (MQ(recent_event_filter=RE(
        has_enrolled_recently=True, events_after=ts(to_ms("2025-12-17T09:00:00Z") + 1),
        events_before=ts(to_ms("2025-12-22T09:00:00Z") + 1))),
        events_sql(after=to_ms("2025-12-17T09:00:00Z") + 1,
                   before=to_ms("2025-12-22T09:00:00Z") + 1,
                   has=[("domain.enrollment.v1.ENROLLED", True)])),
    "events_index_types": (MQ(recent_event_filter=RE(
        event_types=["domain.enrollment.v1.COVERAGE_CHANGED", "domain.clinical.v1.LAB_RESULT"],
        within_last=dur(60 * 86400))),
        events_sql(types=("domain.enrollment.v1.COVERAGE_CHANGED", "domain.clinical.v1.LAB_RESULT"),
                   within=60 * 86400)),
    "events_index_counted": (MQ(recent_event_filter=RE(
        event_types=["domain.authentication.v1.SIGNIN"], within_last=dur(14 * 86400),
        min_event_count=3)),
        events_sql(types=("domain.authentication.v1.SIGNIN",), within=14 * 86400, min_count=3)),
    "events_index_enrollment": (MQ(recent_event_filter=RE(
        event_categories=[3], within_last=dur(30 * 86400), has_enrolled_recently=True),
        engagement_filter=EF(cohorts=[5])),
        events_sql(cats=(3,), within=30 * 86400, has=[("domain.enrollment.v1.ENROLLED", True)]) +
        " AND engagement_cohort = 'NEW_MEMBER'"),
    "account_mock": (MQ(account_statuses=[1, 4], exclude_mock_accounts=True),
                     "account_status IN ('ACTIVE','PENDING') AND is_mock = 0"),
    "risk": (MQ(risk_stratification_filter=be.RiskStratificationFilter(
        min_health_risk_score=0.3, min_chronic_conditions=2)),
        "health_risk_score >= 0.3 AND json_array_length(chronic_conditions) >= 2"),
    "biometric": (MQ(biometric_filter=be.BiometricFilter(has_wearable_connected=True,
                                                         has_sleep_data=True)),
                  set_any("devices") + " AND has_sleep_data = 1"),
    "sdoh": (MQ(sdoh_filter=be.SDOHFilter(has_sdoh_screening=True,
                                          has_food_insecurity=False)),
             "has_sdoh_screening = 1 AND has_food_insecurity = 0"),
    "provider": (MQ(provider_network_filter=be.ProviderNetworkFilter(
        has_pcp_attributed=True, provider_types=["SPECIALIST", "CARDIOLOGIST"])),
        "has_pcp_attributed = 1 AND " + set_any("provider_types", ["SPECIALIST", "CARDIOLOGIST"])),
    "temporal": (MQ(temporal_event_filter=be.TemporalEventFilter(
        coverage_expiring_within_days=True, days_until_expiration=120)),
        "coverage_end >= %d AND coverage_end <= %d" % (T0 - DAY + 1, T0 + 120 * DAY)),
}


def test_golden_cases_per_family(res, db):
    with open(os.path.join(DATA, "golden.json")) as f:
        golden = json.load(f)
    assert set(golden) == set(GOLDEN)
    for name, (msg, where) in GOLDEN.items():
        total, got, cursor = res.query(msg)
        expect = ids(db, where)
        assert got == expect, name
        assert got == golden[name], name
        assert total == len(got) and cursor == ""
        assert 0 < total < 300, (name, total)  # each case selects something, not everything


INVALID = [
    (MQ(demographics_filter=DF(min_age=40, max_age=30)), "demographics_filter.min_age"),
    (MQ(demographics_filter=DF(age_groups=[0])), "demographics_filter.age_groups[0]"),
    (MQ(insurance_plan_filter=IP(plan_types=[42])), "insurance_plan_filter.plan_types[0]"),
    (MQ(feature_options=[be.FeatureOptionFilter(name="no_such_option", value="1")]),
     "feature_options[0].name: unknown feature option 'no_such_option'"),
    (MQ(feature_options=[be.FeatureOptionFilter(name="chat_available", type=3, value="1")]),
     "feature_options[0].type"),
    (MQ(feature_options=[be.FeatureOptionFilter(name="max_visits_per_year", value="ten")]),
     "feature_options[0].value"),
    (MQ(feature_options=[be.FeatureOptionFilter(name="provider_instructions", value="x",
                                                operator=4)]),
     "feature_options[0].operator"),
    (MQ(predicate_filter=be.PredicateFilter(expression="AGE >= 18 AND COLOR = 'red'")),
     "predicate_filter.expression: at 15 near 'COLOR': unknown attribute 'COLOR'"),
    (MQ(predicate_filter=be.PredicateFilter(expression="AGE >= 18 AND (STATE = 'CA'")),
     "predicate_filter.expression: at 28: expected ')', found the end"),
    (MQ(min_app_usage_probability=1.5), "min_app_usage_probability"),
    (MQ(limit=-1), "limit"),
    (MQ(cursor="zz"), "cursor"),
    (MQ(sponsor_ids=[""]), "sponsor_ids[0]: empty"),
    (MQ(recent_event_filter=RE(min_event_count=5, max_event_count=2)),
     "recent_event_filter.min_event_count"),
    (MQ(recent_event_filter=RE(within_last=dur(-5))), "recent_event_filter.within_last"),
    (MQ(insurance_plan_filter=IP(renewing_within_days=True)),
     "insurance_plan_filter.days_until_renewal"),
    (MQ(temporal_event_filter=be.TemporalEventFilter(coverage_expiring_within_days=True)),
     "temporal_event_filter.days_until_expiration"),
    (MQ(account_statuses=[0]), "account_statuses[0]"),
    (MQ(sort_order=be.SortOrder(field=9)), "sort_order.field"),
]


def test_invalid_queries_name_the_field(res):
    for msg, field in INVALID:
        with pytest.raises(ValueError) as e:
            res.query(msg)
        rc, text = e.value.args
        assert rc == -2, text
        assert ("member_query." + field) in text, (field, text)


def test_expression_language(res, db):
    a = age_sql(T0)
    cases = [
        ("AGE >= 18 AND STATE = 'CA'", "%s >= 18 AND state = 'CA'" % a),
        ("NOT (STATE = 'CA' OR STATE = 'TX') AND AGE < 40", "NOT (state = 'CA' OR state = 'TX') "
         "AND %s < 40" % a),
        ("AGE BETWEEN 30 AND 45 AND PLAN_TYPE NOT IN ('HMO', 'PPO')",
         "%s BETWEEN 30 AND 45 AND plan_type NOT IN ('HMO','PPO')" % a),
        ("INDIVIDUAL_DEDUCTIBLE > 1500.5 OR FAMILY_SIZE >= 4",
         "individual_deductible > 1500.5 OR family_size >= 4"),
        ("LAST_LOGIN_AT >= NOW() - 7d AND CHRONIC_CONDITIONS = 'ASTHMA'",
         "last_login_at >= %d AND %s" % (T0 - 7 * DAY, set_any("chronic_conditions", ["ASTHMA"]))),
        ("ENROLLMENT_DATE < DATE '2020-01-01' AND METAL_TIER IS NULL",
         "enrollment_date < %d AND metal_tier IS NULL" % to_ms("2020-01-01")),
        ("NOT METAL_TIER = 'SILVER'", "metal_tier <> 'SILVER'"),
        ("NOT (METAL_TIER IS NULL) AND NOT (LAST_CLAIM_AT IS NOT NULL)",
         "metal_tier IS NOT NULL AND last_claim_at IS NULL"),
        ("NOT (AGE < 0) AND INDIVIDUAL_DEDUCTIBLE < 1e300", "date_of_birth IS NOT NULL"),
        ("LAST_CLAIM_AT IS NOT NULL AND last_claim_at < '2025-11-01T00:00:00Z'",
         "last_claim_at IS NOT NULL AND last_claim_at < %d" % to_ms("2025-11-01T00:00:00Z")),
        ("feature_options.max_visits_per_year <= 8 AND HAS_HSA != true",
         "\"feature_options.max_visits_per_year\" <= 8 AND has_hsa = 0"),
    ]
    for text, where in cases:
        total, got, _ = res.expr(text)
        assert got == ids(db, where), text
        assert total == len(got)
    for bad, needle in [("AGE >", "at 6: expected a value, found the end"),
                        ("STATE = 'CA' AND", "found the end"),
                        ("STATE == 'CA'", "expected a comparison operator"),
                        ("STATE = 5", "at 9 near '5': expected a quoted string"),
                        ("AGE >= 'x'", "expected a number"),
                        ("SHOE_SIZE > 9", "at 1 near 'SHOE_SIZE': unknown attribute 'SHOE_SIZE'"),
                        ("STATE IN ('CA' 'TX')", "near ''TX'': expected ',' or ')'"),
                        ("(" * 100 + "AGE > 1" + ")" * 100, "nesting deeper than 64"),
                        ("", "expression: empty")]:
        with pytest.raises(ValueError) as e:
            res.expr(bad)
        assert needle in e.value.args[1], (bad, e.value.args[1])


SORTS = {1: "last_login_at", 2: "enrollment_date", 3: "date_of_birth",
         4: "app_usage_probability", 5: "last_name"}


def test_sort_orders_and_paging(res, db):
    base = "state IN ('CA','TX','FL','NY')"
    for field, c in SORTS.items():
        for direction in (1, 2):
            order = "%s IS NULL, %s %s, member_id" % (col(c), col(c),
                                                      "ASC" if direction == 1 else "DESC")
            expect = ids(db, base, order)
            msg = MQ(demographics_filter=DF(states=["CA", "TX", "FL", "NY"]),
                     sort_order=be.SortOrder(field=field, direction=direction), limit=7)
            seen = []
            while True:
                total, got, cursor = res.query(msg)
                assert total == len(expect)
                seen += got
                if not cursor:
                    break
                msg.cursor = cursor
            assert seen == expect, (field, direction)
    # few matches (under 1/32 of the directory): sorted by rank instead of walking id order
    msg, where = GOLDEN["demographics_zip"]
    msg = MQ()
    msg.CopyFrom(GOLDEN["demographics_zip"][0])
    msg.limit = 2
    seen = []
    while True:
        total, got, cursor = res.query(msg)
        seen += got
        if not cursor:
            break
        msg.cursor = cursor
    assert seen == ids(db, where) and total == len(seen) and total < 300 // 32
    total, got, cursor = res.query(MQ(limit=10))
    assert total == 300 and len(got) == 10 and cursor
    assert got == ids(db, "1")[:10]
    with pytest.raises(ValueError) as e:
        res.query(MQ(limit=10, cursor=cursor, sort_order=be.SortOrder(field=2)))
    assert "made for another sort_order" in e.value.args[1]


def test_cursor_stable_across_reload(tmp_path):
    """Pages keep going across a reload that adds and removes members: the
    members in both snapshots come exactly once, in order."""
    lines = open(MEMBERS).read().splitlines(keepends=True)
    rng = random.Random(5)
    first = lines[:200]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(first))
    r = Resolver(str(path))
    try:
        for field in (0, 2):
            msg = MQ(limit=13, sort_order=be.SortOrder(field=field, direction=2))
            _, page, cursor = r.query(msg)
            seen = list(page)
            # reload: drop 30 members not yet seen, add the other 100
            keep = [x for x in first if json.loads(x)["member_id"] in seen or rng.random() > 0.2]
            second = keep + lines[200:]
            rng.shuffle(second)
            tmp = tmp_path / "m.new"
            tmp.write_text("".join(second))
            os.replace(tmp, path)
            assert r.reload() == "RELOADED 1"
            while cursor:
                msg.cursor = cursor
                _, page, cursor = r.query(msg)
                seen += page
            assert len(seen) == len(set(seen)), "a member came twice"
            db2 = load_sqlite(str(path))
            order = ("member_id DESC" if field == 0 else
                     "enrollment_date IS NULL, enrollment_date DESC, member_id")
            expect = ids(db2, "1", order)
            # the first page came from the old snapshot; the rest is exactly what follows it
            assert seen[13:] == expect[expect.index(seen[12]) + 1:]
            path.write_text("".join(first))
            assert r.reload() == "RELOADED 1"
    finally:
        r.close()


# --- property test: random MemberQuery, same members as SQLite -----------------

STATES = ["CA", "TX", "FL", "NY", "PA", "IL", "OH", "AZ", "WA", "MA"]
SERVICES = ["VPC", "BH_THERAPY", "BH_PSYCHIATRY", "CHRONIC_CARE_MANAGEMENT", "PHARMACY",
            "LAB_SERVICES", "EMO", "SPECIALIST"]
CONDITIONS = ["DIABETES", "HYPERTENSION", "ASTHMA", "COPD", "HEART_DISEASE", "DEPRESSION"]
PLAN_TYPES = ["HMO", "PPO", "EPO", "POS", "HDHP", "MEDICARE", "MEDICARE_ADVANTAGE", "MEDICAID",
              "DUAL_ELIGIBLE"]
COHORTS = ["HIGHLY_ENGAGED", "REGULARLY_ENGAGED", "OCCASIONALLY_ENGAGED", "DORMANT",
           "NEW_MEMBER", "AT_RISK_CHURN"]


def pieces():
    """Strategies of (apply to a MemberQuery, SQL) pairs, one filter each."""
    def flag(setter, column):
        return st.booleans().map(lambda v: (lambda m: setter(m, v),
                                            "%s = %d" % (col(column), v)))

    def sub(lst, k=3):
        return st.lists(st.sampled_from(lst), min_size=1, max_size=k, unique=True)

    def day(lo, hi):
        return st.integers(lo, hi).map(lambda d: T0 + d * DAY)

    out = [
        sub(STATES).map(lambda v: (lambda m: m.demographics_filter.states.extend(v),
                                   in_list("state", v))),
        sub(SERVICES).map(lambda v: (
            lambda m: m.benefit_contract_filter.healthcare_service_ids.extend(v),
            set_any("healthcare_services", v))),
        sub(CONDITIONS).map(lambda v: (
            lambda m: m.care_journey_filter.chronic_conditions.extend(v),
            set_any("chronic_conditions", v))),
        sub(PLAN_TYPES).map(lambda v: (
            lambda m: m.insurance_plan_filter.plan_types.extend(
                [be.InsurancePlanFilter.PlanType.Value(x) for x in v]),
            in_list("plan_type", v))),
        sub(COHORTS).map(lambda v: (
            lambda m: m.engagement_filter.cohorts.extend(
                [be.EngagementFilter.EngagementCohort.Value(x) for x in v]),
            in_list("engagement_cohort", v))),
        st.tuples(st.integers(0, 90), st.integers(0, 40)).map(lambda a: (
            lambda m: (m.demographics_filter.__setattr__("min_age", a[0]),
                       m.demographics_filter.__setattr__("max_age", a[0] + a[1])),
            age_between(a[0], a[0] + a[1]))),
        st.integers(0, 100).map(lambda p: (
            lambda m: m.__setattr__("min_app_usage_probability", p / 100.0),
            "app_usage_probability >= %s" % (p / 100.0) if p else "1")),
        st.integers(0, 60).map(lambda d: (
            lambda m: m.insurance_plan_filter.__setattr__("min_individual_deductible",
                                                          float(d * 100)),
            "individual_deductible >= %d" % (d * 100))),
        day(-120, 0).map(lambda t: (lambda m: m.last_active_after.CopyFrom(ts(t)),
                                    "last_login_at >= %d" % t)),
        day(-60, 0).map(lambda t: (lambda m: m.eligibility_checked_before.CopyFrom(ts(t)),
                                   "last_eligibility_check_at < %d" % t)),
        flag(lambda m, v: m.coverage_filter.__setattr__("has_dual_coverage", v),
             "has_dual_coverage"),
        flag(lambda m, v: m.insurance_plan_filter.__setattr__("has_telehealth_coverage", v),
             "has_telehealth_coverage"),
        flag(lambda m, v: m.engagement_filter.__setattr__("push_notifications_enabled", v),
             "push_notifications_enabled"),
        flag(lambda m, v: m.care_journey_filter.__setattr__("is_high_utilizer", v),
             "is_high_utilizer"),
        flag(lambda m, v: m.sdoh_filter.__setattr__("requires_digital_assistance", v),
             "requires_digital_assistance"),
        flag(lambda m, v: m.family_filter.__setattr__("has_family_members_enrolled", v),
             "has_family_members_enrolled"),
        st.booleans().map(lambda v: (
            lambda m: m.family_filter.__setattr__("has_dependents", v),
            "dependents_count %s" % (">= 1" if v else "< 1"))),
        st.booleans().map(lambda v: (
            lambda m: m.care_journey_filter.__setattr__("has_open_care_gaps", v),
            ("" if v else "NOT ") + set_any("care_gaps"))),
        st.sampled_from(["ACTIVE", "INACTIVE", "SUSPENDED", "PENDING"]).map(lambda v: (
            lambda m: m.account_statuses.append(
                be.AccountStatus.Value("PENDING_ACTIVATION" if v == "PENDING" else v)),
            "account_status = %s" % q(v))),
        st.just((lambda m: m.__setattr__("exclude_mock_accounts", True), "is_mock = 0")),
        st.tuples(st.sampled_from([1, 4, 5, 6, 13]), st.integers(1, 60), st.integers(1, 4)).map(
            lambda a: (lambda m: (m.recent_event_filter.event_categories.append(a[0]),
                                  m.recent_event_filter.within_last.CopyFrom(dur(a[1] * 86400)),
                                  m.recent_event_filter.__setattr__("min_event_count", a[2])),
                       events_sql(cats=(a[0],), within=a[1] * 86400, min_count=a[2]))),
        st.sampled_from(["rte_v2", "proactive_warming", "paperless"]).map(lambda f: (
            lambda m: m.required_feature_flags.__setitem__(f, True),
            set_any("feature_flags", [f]))),
        st.integers(0, 4).map(lambda n: (
            lambda m: m.risk_stratification_filter.__setattr__("min_chronic_conditions", n),
            "json_array_length(chronic_conditions) >= %d" % n)),
    ]
    return out


PIECES = pieces()


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(st.integers(0, len(PIECES) - 1), min_size=1, max_size=4, unique=True).flatmap(
    lambda idx: st.tuples(*[PIECES[i] for i in idx])))
def test_property_random_queries_match_sqlite(res, db, parts):
    """Each piece sets its own field, so the message ANDs them as the SQL does."""
    msg = MQ()
    for apply, _ in parts:
        apply(msg)
    where = " AND ".join("(" + w + ")" for _, w in parts)
    total, got, _ = res.query(msg)
    assert got == ids(db, where), where
    assert total == len(got)


HAS_FLAG = {"domain.authentication.v1.SIGNIN": "has_signed_in_recently",
            "domain.enrollment.v1.ENROLLED": "has_enrolled_recently",
            "domain.enrollment.v1.COVERAGE_CHANGED": "has_coverage_change",
            "domain.engagement.v1.APP_SESSION_STARTED": "has_app_session",
            "domain.clinical.v1.PRESCRIPTION_FILLED": "has_prescription_filled"}
EVENT_TYPES = sorted(HAS_FLAG) + ["domain.clinical.v1.LAB_RESULT",
                                  "domain.messaging.v1.MESSAGE_SENT"]


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(EVENT_TYPES), min_size=1, max_size=3, unique=True),
       st.integers(0, 90 * 86400), st.integers(0, 30 * 86400), st.sampled_from([-1, 0, 1]),
       st.sampled_from(sorted(HAS_FLAG) + [None]), st.sampled_from([None, 1, 2, 3]),
       st.sampled_from([None, 5, 6]))
def test_property_event_filters_match_sqlite(res, db, types, ago, span, ms, has, count, cohort):
    """Event types, a window whose ends move by a millisecond, has_* and counts (what
    the events index answers, with the engagement cohort tested first or not), against
    the same rules in SQLite."""
    after, before = T0 - ago * 1000 + ms, T0 - ago * 1000 + span * 1000 + ms
    f = RE(event_types=types, events_after=ts(after), events_before=ts(before))
    if has:
        setattr(f, HAS_FLAG[has], True)
    if count is not None:
        f.min_event_count = count
    msg = MQ(recent_event_filter=f)
    where = events_sql(types=types, after=after, before=before, min_count=count,
                       has=[(has, True)] if has else ())
    if cohort:
        msg.engagement_filter.cohorts.append(cohort)
        where += " AND engagement_cohort = %s" % q(EF.EngagementCohort.Name(cohort))
    total, got, _ = res.query(msg)
    assert got == ids(db, where), where
    assert total == len(got)


def test_compiled_directory_answers_the_same(res, tmp_path):
    """The same directory compiled (member-gen --compile) answers every golden case, the
    expression cases and a sorted, paged query exactly as the JSONL does."""
    import subprocess
    from conftest import bin_path

    out = str(tmp_path / "members.mdir")
    subprocess.run([bin_path("member-gen"), "--compile", MEMBERS, "--out", out], check=True)
    with open(out, "rb") as f:
        assert f.read(8) == b"RTE-MDIR"
    rc = Resolver(out)
    try:
        for name, (msg, _) in GOLDEN.items():
            assert rc.query(msg) == res.query(msg), name
        for text in ["AGE >= 18 AND STATE = 'CA'", "NOT METAL_TIER = 'SILVER'",
                     "LAST_LOGIN_AT >= NOW() - 7d AND CHRONIC_CONDITIONS = 'ASTHMA'",
                     "feature_options.max_visits_per_year <= 8 AND HAS_HSA != true"]:
            assert rc.expr(text) == res.expr(text), text
        page = MQ(limit=17, sort_order=be.SortOrder(field=3, direction=2))
        cursor, seen = "", []
        while True:
            msg = MQ()
            msg.CopyFrom(page)
            msg.cursor = cursor
            a, b = rc.query(msg), res.query(msg)
            assert a == b
            seen += a[1]
            cursor = a[2]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 300
    finally:
        rc.close()
