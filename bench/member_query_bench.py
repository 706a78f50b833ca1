"""member_query_bench.py - the source's MemberQuery examples on member_dir and PostgreSQL.

Usage: member_query_bench.py MEMBERS.jsonl BUILD_DIR PGHOST PGPORT [RUNS [BASE_BUILD]]

Loads MEMBERS (tools/member-gen JSONL) into the PostgreSQL server at
PGHOST (a socket directory) / PGPORT - one row per member, list attributes
as text[] with GIN indexes, events in their own table indexed by (member,
time) and (category, time), b-tree indexes on every column the queries
filter or sort on, then ANALYZE - and into member_dir through
BUILD_DIR/bin/member-query. Then runs the 12 queries below (the usage
examples of source 001, "MemberQuery Usage Examples", translated to SQL
here) on both sides: the page of ids must be equal on both (the run fails
otherwise), and it prints per query the matches, p50 on each side over RUNS
runs (default 9) and the ratio. Times: PostgreSQL from sending the query
to the last row fetched (psycopg2, one connection, warm); member_dir one
resolve (rte_member_query_resolve, the page's ids handed to a callback).

After loading it builds member_dir's events index (by type and time, built
on first use; printed: build time, memory, events, types) so the first
query does not pay for it. With BASE_BUILD (another build's directory, e.g.
a copy of main's), its member-query loads the same file too and every
query also runs there: two more columns, its p50 and the speed-up of
BUILD_DIR over it, measured in the same run on the same machine load.

The source's dates (2024) are moved to the data's clock (member-gen --now
2026-01-05): "2024-10-01" becomes 2025-12-01 and "2024-11-13" 2025-12-15.
Two examples name values the proto does not have (Example 6's
COST_CONSCIOUS, Example 10's NEWLY_ENGAGED) and are left out; Example 7's
Medicare Advantage members are looked for among MEDICARE_AGE as well as
SENIOR (the source asks SENIOR only, who are under 65).
"""
import calendar
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

import psycopg2

NOW = "2026-01-05T00:00:00Z"
DAY = 86400000


def ms(v):
    if len(v) == 10:
        return (datetime.date.fromisoformat(v) - datetime.date(1970, 1, 1)).days * DAY
    t = datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000


T0 = ms(NOW)

FLAGS = ["has_rte_enabled", "is_mock", "has_dual_coverage", "is_self_funded",
         "has_prescription_coverage", "has_completed_onboarding", "has_sent_messages",
         "push_notifications_enabled", "email_notifications_enabled",
         "has_active_prescriptions", "is_high_utilizer"]
NUMS = ["dependents_count", "family_size"]
TIMES = ["contract_start", "contract_end", "plan_renewal_date", "date_of_birth",
         "last_login_at", "last_eligibility_check_at", "upcoming_appointment_at",
         "enrollment_date"]
STRS = ["state", "plan_type", "coverage_type", "payer_name", "coverage_status",
        "network_type", "member_role", "relationship", "city", "language",
        "engagement_cohort", "activity_trend"]
SETS = ["healthcare_services", "enrolled_programs", "care_gaps", "chronic_conditions"]
CATEGORY = [("domain.authentication.", 1), ("domain.accounts.", 2), ("domain.enrollment.", 3),
            ("domain.engagement.", 4), ("domain.scheduling.", 5), ("domain.messaging.", 6),
            ("domain.care.v1.CARE_GAP", 8), ("domain.care.", 7), ("domain.clinical.", 9),
            ("domain.search.", 10), ("domain.recommendations.", 11), ("domain.payments.", 12),
            ("domain.rte.", 13), ("domain.communications.", 14)]


def tsv(v):
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, list):
        return "{" + ",".join(v) + "}"
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class Rows:
    """A file-like TSV stream of the members (or their events) for COPY."""

    def __init__(self, path, events):
        self.f = open(path)
        self.events = events
        self.buf = ""

    def _line(self, m):
        if self.events:
            out = []
            for e in m.get("events") or []:
                cat = next((c for p, c in CATEGORY if e[1].startswith(p)), 0)
                out.append("\t".join([m["member_id"], str(ms(e[0]) // 1000), e[1],
                                      tsv(e[2] if len(e) > 2 else None), str(cat)]))
            return "".join(x + "\n" for x in out)
        row = [m["member_id"]] + [bool(m.get(c)) for c in FLAGS] + \
            [m.get(c) for c in NUMS] + \
            [ms(m[c]) if m.get(c) else None for c in TIMES] + \
            [m.get(c) or None for c in STRS] + [m.get(c) or [] for c in SETS]
        return "\t".join(tsv(v) for v in row) + "\n"

    def read(self, n=-1):
        while n < 0 or len(self.buf) < n:
            line = self.f.readline()
            if not line:
                break
            self.buf += self._line(json.loads(line))
        out, self.buf = (self.buf, "") if n < 0 else (self.buf[:n], self.buf[n:])
        return out

    readline = read


def load_pg(conn, path):
    cur = conn.cursor()
    cols = ["member_id text COLLATE \"C\" PRIMARY KEY"] + [c + " boolean" for c in FLAGS] + \
        [c + " integer" for c in NUMS] + [c + " bigint" for c in TIMES] + \
        [c + " text" for c in STRS] + [c + " text[]" for c in SETS]
    cur.execute("DROP TABLE IF EXISTS m; DROP TABLE IF EXISTS ev")
    cur.execute("CREATE TABLE m (" + ", ".join(cols) + ")")
    cur.execute("CREATE TABLE ev (member_id text COLLATE \"C\", at_s bigint, type text, "
                "source text, category integer)")
    t = time.time()
    cur.copy_expert("COPY m FROM STDIN", Rows(path, False), size=1 << 20)
    cur.copy_expert("COPY ev FROM STDIN", Rows(path, True), size=1 << 20)
    loaded = time.time() - t
    t = time.time()
    for c in STRS + TIMES + ["dependents_count", "family_size"]:
        cur.execute("CREATE INDEX ON m (%s)" % c)
    for c in SETS:
        cur.execute("CREATE INDEX ON m USING gin (%s)" % c)
    cur.execute("CREATE INDEX ON m (state, plan_type)")
    cur.execute("CREATE INDEX ON ev (member_id, at_s)")
    cur.execute("CREATE INDEX ON ev (category, at_s) INCLUDE (member_id)")
    cur.execute("CREATE INDEX ON ev (type, at_s) INCLUDE (member_id)")
    cur.execute("ANALYZE")
    conn.commit()
    return loaded, time.time() - t


def born_by(years):
    d = datetime.datetime.fromtimestamp(T0 / 1000, datetime.timezone.utc).date()
    y = d.year - years
    day = min(d.day, calendar.monthrange(y, d.month)[1])  # 29 Feb in a common year: the 28th
    return (datetime.date(y, d.month, day) - datetime.date(1970, 1, 1)).days * DAY


def age(lo, hi=None):
    """SQL for a whole-years age in [lo, hi] as a range of birth dates (index-friendly)."""
    parts = ["date_of_birth <= %d" % born_by(lo)] if lo > 0 else ["date_of_birth IS NOT NULL"]
    if hi is not None:
        parts.append("date_of_birth > %d" % born_by(hi + 1))
    return "(" + " AND ".join(parts) + ")"


def arr(vals):
    return "ARRAY[%s]" % ",".join("'%s'" % v for v in vals)


def lst(vals):
    return "(%s)" % ",".join("'%s'" % v for v in vals)


def examples(be, el):
    """(name, MemberQuery, SQL WHERE, ORDER BY) for the 12 examples."""
    def ts(v):
        return el.Timestamp(seconds=(ms(v) if isinstance(v, str) else v) // 1000)

    oct1, nov13 = ms("2025-12-01"), ms("2025-12-15")
    D = be.DemographicsFilter
    E = be.EngagementFilter
    C = be.CareJourneyFilter
    R = be.RecentEventFilter
    P = be.InsurancePlanFilter
    F = be.FamilyRelationshipFilter
    mid, senior, medicare = age(35, 54), age(55, 64), age(65)

    def win(cats, lo=None, hi=None):
        w = ["ev.member_id = m.member_id"]
        if lo is not None:
            w.append("at_s >= %d" % ((lo + 999) // 1000))
        if hi is not None:
            w.append("at_s < %d" % (hi // 1000))
        if cats:
            w.append("category IN %s" % lst(cats).replace("'", ""))
        return " AND ".join(w)

    def has(t, lo=None, hi=None):
        return "EXISTS (SELECT 1 FROM ev WHERE %s AND type = '%s')" % (win((), lo, hi), t)

    out = []
    out.append(("1 VPC in CA", be.MemberQuery(
        benefit_contract_filter=be.BenefitContractFilter(healthcare_service_ids=["VPC"],
                                                         active_at=ts(nov13)),
        demographics_filter=D(states=["CA"], min_age=18),
        engagement_filter=E(cohorts=[1, 2], has_upcoming_appointments=True), limit=5000),
        "healthcare_services && %s AND contract_start <= %d AND contract_end > %d AND "
        "state = 'CA' AND %s AND engagement_cohort IN ('HIGHLY_ENGAGED','REGULARLY_ENGAGED') "
        "AND upcoming_appointment_at >= %d" % (arr(["VPC"]), nov13, nov13 - DAY, age(18), T0),
        "member_id LIMIT 5000"))
    out.append(("2 BH care gaps", be.MemberQuery(
        benefit_contract_filter=be.BenefitContractFilter(
            healthcare_service_ids=["BH_THERAPY", "BH_PSYCHIATRY"]),
        care_journey_filter=C(enrolled_programs=[2], has_open_care_gaps=True,
                              care_gap_types=["PHQ9_FOLLOWUP", "MEDICATION_ADHERENCE"]),
        engagement_filter=E(logged_in_after=ts(oct1), has_sent_messages=True)),
        "healthcare_services && %s AND enrolled_programs && %s AND cardinality(care_gaps) > 0 "
        "AND care_gaps && %s AND last_login_at >= %d AND has_sent_messages" % (
            arr(["BH_THERAPY", "BH_PSYCHIATRY"]), arr(["BEHAVIORAL_HEALTH"]),
            arr(["PHQ9_FOLLOWUP", "MEDICATION_ADHERENCE"]), oct1), "member_id"))
    out.append(("3 family subscribers", be.MemberQuery(
        family_filter=F(member_roles=[1], has_dependents=True, min_family_size=3),
        demographics_filter=D(age_groups=[3, 4]),
        coverage_filter=be.CoverageFilter(coverage_statuses=[1])),
        "member_role = 'SUBSCRIBER' AND dependents_count >= 1 AND family_size >= 3 AND "
        "(%s OR %s) AND coverage_status = 'ACTIVE'" % (mid, senior), "member_id"))
    out.append(("4 dual coverage, stale RTE", be.MemberQuery(
        coverage_filter=be.CoverageFilter(has_dual_coverage=True, coverage_types=[1, 2]),
        eligibility_checked_before=ts(T0 - 30 * DAY), exclude_mock_accounts=True),
        "has_dual_coverage AND coverage_type IN ('PRIMARY','SECONDARY') AND "
        "last_eligibility_check_at < %d AND NOT is_mock" % (T0 - 30 * DAY), "member_id"))
    out.append(("5 new members onboarding", be.MemberQuery(
        engagement_filter=E(cohorts=[5], has_completed_onboarding=False),
        demographics_filter=D(preferred_spoken_languages=["en", "es"]),
        sort_order=be.SortOrder(field=2, direction=2), limit=1000),
        "engagement_cohort = 'NEW_MEMBER' AND NOT has_completed_onboarding AND "
        "language IN ('en','es')",
        "enrollment_date IS NULL, enrollment_date DESC, member_id LIMIT 1000"))
    out.append(("7 Medicare Advantage Rx", be.MemberQuery(
        insurance_plan_filter=P(plan_types=[7], has_prescription_coverage=True),
        demographics_filter=D(age_groups=[4, 5]),
        care_journey_filter=C(has_active_prescriptions=True,
                              chronic_conditions=["DIABETES", "HYPERTENSION", "HEART_DISEASE"]),
        limit=3000),
        "plan_type = 'MEDICARE_ADVANTAGE' AND has_prescription_coverage AND (%s OR %s) AND "
        "has_active_prescriptions AND chronic_conditions && %s" % (
            senior, medicare, arr(["DIABETES", "HYPERTENSION", "HEART_DISEASE"])),
        "member_id LIMIT 3000"))
    out.append(("8 plan renewal", be.MemberQuery(
        insurance_plan_filter=P(renewing_within_days=True, days_until_renewal=30,
                                is_self_funded=False),
        family_filter=F(member_roles=[1], has_dependents=True),
        engagement_filter=E(push_notifications_enabled=True, email_notifications_enabled=True)),
        "plan_renewal_date >= %d AND plan_renewal_date <= %d AND NOT is_self_funded AND "
        "member_role = 'SUBSCRIBER' AND dependents_count >= 1 AND push_notifications_enabled "
        "AND email_notifications_enabled" % (T0 - DAY + 1, T0 + 30 * DAY), "member_id"))
    out.append(("9 HMO in CA cities", be.MemberQuery(
        insurance_plan_filter=P(plan_types=[1], network_types=[1],
                                payer_names=["Kaiser Permanente", "Blue Shield HMO"]),
        demographics_filter=D(states=["CA"], cities=["San Francisco", "Oakland", "San Jose"]),
        benefit_contract_filter=be.BenefitContractFilter(
            healthcare_service_ids=["PRIMARY_CARE", "SPECIALIST_REFERRAL"])),
        "plan_type = 'HMO' AND network_type = 'IN_NETWORK_ONLY' AND payer_name IN "
        "('Kaiser Permanente','Blue Shield HMO') AND state = 'CA' AND city IN "
        "('San Francisco','Oakland','San Jose') AND healthcare_services && %s" %
        arr(["PRIMARY_CARE", "SPECIALIST_REFERRAL"]), "member_id"))
    lo48 = T0 - 48 * 3600 * 1000
    out.append(("11 recent enrollment", be.MemberQuery(
        recent_event_filter=R(event_categories=[3], within_last=el.Duration(seconds=48 * 3600),
                              has_enrolled_recently=True, has_coverage_change=True),
        engagement_filter=E(cohorts=[5], has_completed_onboarding=False), limit=1000),
        "EXISTS (SELECT 1 FROM ev WHERE %s) AND %s AND %s AND "
        "engagement_cohort = 'NEW_MEMBER' AND NOT has_completed_onboarding" % (
            win([3], lo48), has("domain.enrollment.v1.ENROLLED", lo48),
            has("domain.enrollment.v1.COVERAGE_CHANGED", lo48)), "member_id LIMIT 1000"))
    out.append(("12 re-engagement", be.MemberQuery(
        recent_event_filter=R(event_categories=[1, 4], events_before=ts(oct1),
                              is_decreasing_activity=True),
        engagement_filter=E(cohorts=[6], logged_in_before=ts(oct1)),
        demographics_filter=D(age_groups=[3, 4])),
        "EXISTS (SELECT 1 FROM ev WHERE %s) AND activity_trend = 'DECREASING' AND "
        "engagement_cohort = 'AT_RISK_CHURN' AND last_login_at < %d AND (%s OR %s)" % (
            win([1, 4], None, oct1), oct1, mid, senior), "member_id"))
    lo14 = T0 - 14 * DAY
    out.append(("13 post-appointment", be.MemberQuery(
        recent_event_filter=R(event_categories=[5, 9], within_last=el.Duration(seconds=14 * 86400),
                              has_booked_appointment=True),
        care_journey_filter=C(has_open_care_gaps=True,
                              care_gap_types=["POST_VISIT_FOLLOWUP", "LAB_ORDER_PENDING"])),
        "EXISTS (SELECT 1 FROM ev WHERE %s) AND %s AND cardinality(care_gaps) > 0 AND "
        "care_gaps && %s" % (win([5, 9], lo14),
                              has("domain.scheduling.v1.APPOINTMENT_BOOKED", lo14),
                              arr(["POST_VISIT_FOLLOWUP", "LAB_ORDER_PENDING"])), "member_id"))
    out.append(("16 chronic care candidates", be.MemberQuery(
        care_journey_filter=C(chronic_conditions=["DIABETES", "HYPERTENSION", "COPD"],
                              has_active_prescriptions=True, is_high_utilizer=True),
        benefit_contract_filter=be.BenefitContractFilter(
            healthcare_service_ids=["CHRONIC_CARE_MANAGEMENT"]),
        demographics_filter=D(age_groups=[4, 5])),
        "chronic_conditions && %s AND has_active_prescriptions AND is_high_utilizer AND "
        "healthcare_services && %s AND (%s OR %s)" % (
            arr(["DIABETES", "HYPERTENSION", "COPD"]), arr(["CHRONIC_CARE_MANAGEMENT"]),
            senior, medicare), "member_id"))
    return out


class MemberDir:
    def __init__(self, build, path):
        self.p = subprocess.Popen([os.path.join(build, "bin", "member-query"), path, NOW],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("READY"):
            raise SystemExit("member-query did not load %s" % path)

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().rstrip("\n")

    def ids(self, msg):
        first = self.ask("Q " + msg.SerializeToString().hex())
        if not first.startswith("IDS"):
            raise SystemExit("member_dir refused a query: " + first)
        status = self.p.stdout.readline().split()
        return first.split()[1:], int(status[1])

    def event_index(self):
        parts = self.ask("I").split()
        if parts[0] != "INDEX":
            return "event_index unavailable: " + " ".join(parts)
        return "event_index_build_ms %s bytes %s (%.1f MB) events %s types %s" % (
            parts[1], parts[2], int(parts[2]) / 1e6, parts[3], parts[4])

    def p50(self, msg, runs):
        parts = self.ask("T %d %s" % (runs, msg.SerializeToString().hex())).split()
        return float(parts[1])


def main():
    path, build, host, port = sys.argv[1:5]
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 9
    base_build = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] else None
    sys.path.insert(0, os.path.join(build, "gen", "py"))
    import batch_eligibility_pb2 as be
    import eligibility_pb2 as el

    conn = psycopg2.connect(host=host, port=int(port), user="postgres", dbname="postgres")
    t = time.time()
    loaded, indexed = load_pg(conn, path)
    print("postgres_load_seconds %.1f index_seconds %.1f" % (loaded, indexed))
    t = time.time()
    md = MemberDir(build, path)
    print("member_dir_load_seconds %.1f" % (time.time() - t))
    print(md.event_index())
    base = None
    if base_build:
        t = time.time()
        base = MemberDir(base_build, path)
        print("base member_dir (%s) load_seconds %.1f" % (base_build, time.time() - t))
        base.ask("I")  # an old build answers ERR: no index to build there
    cur = conn.cursor()
    print("%-28s %9s %12s %12s %8s" % ("query", "matches", "pg_p50_ms", "dir_p50_ms", "ratio") +
          (" %12s %8s" % ("base_p50_ms", "speedup") if base else ""))
    failed, total_dir = 0, []
    for name, msg, where, order in examples(be, el):
        sql = "SELECT member_id FROM m WHERE %s ORDER BY %s" % (where, order)
        cur.execute(sql)
        pg_ids = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT count(*) FROM m WHERE " + where)
        pg_total = cur.fetchone()[0]
        dir_ids, dir_total = md.ids(msg)
        if pg_ids != dir_ids or pg_total != dir_total:
            print("MISMATCH %s: postgres %d (page %d), member_dir %d (page %d)" % (
                name, pg_total, len(pg_ids), dir_total, len(dir_ids)))
            failed += 1
            continue
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            cur.execute(sql)
            cur.fetchall()
            times.append((time.perf_counter() - t) * 1000)
        pg = statistics.median(times)
        d = md.p50(msg, runs)
        total_dir.append(d)
        extra = ""
        if base:
            if base.ids(msg) != (dir_ids, dir_total):
                print("MISMATCH %s: base build differs" % name)
                failed += 1
            b = base.p50(msg, runs)  # right after this build's runs, same machine load
            extra = " %12.3f %7.1fx" % (b, b / max(d, 1e-3))
        print("%-28s %9d %12.2f %12.3f %7.0fx" % (name, dir_total, pg, d, pg / max(d, 1e-3)) + extra)
    if total_dir:
        print("member_dir p50 over the set: max %.3f ms, median %.3f ms" % (
            max(total_dir), statistics.median(total_dir)))
    conn.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
