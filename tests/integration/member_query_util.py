"""member_query_util: the member directory in SQLite, and the member-query program.

The reference side of the MemberQuery tests: members (tools/member-gen JSONL)
loaded into SQLite (python3's sqlite3; list attributes as JSON arrays read
with json_each, events in their own table) and a MemberQuery translated into
one SQL WHERE clause written from docs/member-query.md - independently of
libcommon/src/member_query.c - so both must find the same members.

Also `Resolver`, a running tests/programs/member-query over a file.
"""
import datetime
import json
import sqlite3
import subprocess

from conftest import bin_path

NOW = "2026-01-05T00:00:00Z"
DAY = 86400000

FLAGS = ["has_rte_enabled", "is_mock", "has_dual_coverage", "is_file_based_enrollment",
         "is_self_funded", "has_hsa", "has_hra", "has_fsa", "has_mental_health_coverage",
         "has_prescription_coverage", "has_dental_coverage", "has_vision_coverage",
         "has_telehealth_coverage", "is_marketplace_plan", "is_subsidized",
         "has_family_members_enrolled", "is_vip", "is_do_not_contact", "is_lgbtq_plus",
         "has_completed_onboarding", "has_unread_messages", "has_sent_messages",
         "push_notifications_enabled", "email_notifications_enabled",
         "has_active_prescriptions", "is_high_utilizer", "regular_activity", "session_active",
         "has_step_data", "has_heart_rate_data", "has_sleep_data", "has_sdoh_screening",
         "has_transportation_barrier", "has_food_insecurity", "has_housing_instability",
         "requires_digital_assistance", "has_pcp_attributed",
         "feature_options.chat_available", "feature_options.video_visits"]
NUMS = ["individual_deductible", "family_deductible", "individual_oop_max", "dependents_count",
        "family_size", "app_sessions_30d", "app_usage_probability", "health_risk_score",
        "churn_risk_score", "annual_er_visits", "predicted_annual_cost",
        "feature_options.max_visits_per_year"]
TIMES = ["contract_start", "contract_end", "coverage_start", "coverage_end",
         "plan_effective_date", "plan_renewal_date", "last_claim_at", "biometric_data_at",
         "last_provider_visit_at", "life_event_at", "date_of_birth", "last_login_at",
         "last_eligibility_check_at", "upcoming_appointment_at", "enrollment_date"]
STRS = ["sponsor_id", "population_id", "state", "language", "plan_type", "trading_partner_id",
        "account_status", "benefit_contract_id", "insurance_plan_id",
        "feature_options.provider_instructions", "coverage_type", "payer_name",
        "coverage_status", "network_type", "group_number", "policy_number", "employer_id",
        "metal_tier", "member_role", "relationship", "biological_sex", "gender_identity",
        "zip_code", "city", "time_zone", "written_language", "race_ethnicity",
        "engagement_cohort", "activity_trend", "network_id", "last_name"]
SETS = ["healthcare_services", "top_benefits", "used_features", "chronic_conditions",
        "enrolled_programs", "service_delivery_types", "care_gaps", "devices",
        "provider_types", "life_events", "feature_flags"]
CATEGORY = [("domain.authentication.", 1), ("domain.accounts.", 2), ("domain.enrollment.", 3),
            ("domain.engagement.", 4), ("domain.scheduling.", 5), ("domain.messaging.", 6),
            ("domain.care.v1.CARE_GAP", 8), ("domain.care.", 7), ("domain.clinical.", 9),
            ("domain.search.", 10), ("domain.recommendations.", 11), ("domain.payments.", 12),
            ("domain.rte.", 13), ("domain.communications.", 14)]


def col(name):
    return '"' + name + '"'


def to_ms(v):
    if v is None:
        return None
    if len(v) == 10:
        d = datetime.date.fromisoformat(v)
        return (d - datetime.date(1970, 1, 1)).days * DAY
    t = datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 1000


def now_ms():
    return to_ms(NOW)


def category(t):
    for prefix, c in CATEGORY:
        if t.startswith(prefix):
            return c
    return 0


def load_sqlite(path):
    """The members of a JSONL file in an in-memory SQLite database."""
    db = sqlite3.connect(":memory:")
    cols = ["member_id TEXT PRIMARY KEY"] + \
        [col(c) + " INTEGER" for c in FLAGS] + [col(c) + " REAL" for c in NUMS] + \
        [col(c) + " INTEGER" for c in TIMES] + [col(c) + " TEXT" for c in STRS] + \
        [col(c) + " TEXT" for c in SETS]
    db.execute("CREATE TABLE m (" + ", ".join(cols) + ")")
    db.execute("CREATE TABLE ev (member_id TEXT, at_s INTEGER, type TEXT, source TEXT, "
               "feature TEXT, category INTEGER)")
    names = ["member_id"] + FLAGS + NUMS + TIMES + STRS + SETS
    rows, evs = [], []
    status = {"ACTIVE", "INACTIVE", "SUSPENDED", "PENDING"}
    with open(path) as f:
        for line in f:
            m = json.loads(line)
            for k, v in (m.get("feature_options") or {}).items():
                m["feature_options." + k] = v
            row = [m["member_id"]]
            row += [1 if m.get(c) else 0 for c in FLAGS]
            row += [m.get(c) for c in NUMS]
            row += [to_ms(m.get(c)) for c in TIMES]
            strs = []
            for c in STRS:
                v = m.get(c) or None
                if c == "trading_partner_id" and not v:
                    v = m.get("payer_id") or None
                if c == "account_status" and v not in status:
                    v = None
                strs.append(v)
            row += strs
            row += [json.dumps(m.get(c) or []) for c in SETS]
            rows.append(row)
            for e in m.get("events") or []:
                evs.append((m["member_id"], to_ms(e[0]) // 1000, e[1],
                            e[2] if len(e) > 2 else None, e[3] if len(e) > 3 else None,
                            category(e[1])))
    db.executemany("INSERT INTO m (" + ", ".join(col(n) for n in names) + ") VALUES (" +
                   ", ".join("?" * len(names)) + ")", rows)
    db.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?)", evs)
    return db


def age_sql(now):
    """Whole years between date_of_birth and now, as SQL."""
    d = datetime.datetime.fromtimestamp(now / 1000, datetime.timezone.utc).date()
    return ("(%d - CAST(strftime('%%Y', date_of_birth / 1000, 'unixepoch') AS INTEGER) - "
            "(strftime('%%m-%%d', date_of_birth / 1000, 'unixepoch') > '%s'))" %
            (d.year, d.strftime("%m-%d")))


def q(s):
    return "'" + s.replace("'", "''") + "'"


def in_list(c, vals):
    return "%s IN (%s)" % (col(c), ", ".join(q(v) for v in vals))


def set_any(c, vals=None):
    if vals is None:
        return "json_array_length(%s) > 0" % col(c)
    return "EXISTS (SELECT 1 FROM json_each(m.%s) WHERE value IN (%s))" % (
        col(c), ", ".join(q(v) for v in vals))


def ids(db, where, order="member_id"):
    sql = "SELECT member_id FROM m WHERE " + (where or "1") + " ORDER BY " + order
    return [r[0] for r in db.execute(sql)]


class Resolver:
    """A running member-query program over one file."""

    def __init__(self, path, now=NOW):
        self.p = subprocess.Popen([bin_path("member-query"), path, now], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        ready = self.p.stdout.readline()
        assert ready.startswith("READY"), ready

    def _ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        first = self.p.stdout.readline().rstrip("\n")
        if first.startswith("ERR") or first.startswith("TIME") or first.startswith("RELOADED"):
            return first, None
        assert first.startswith("IDS"), first
        status = self.p.stdout.readline().rstrip("\n")
        return status, first.split()[1:]

    def query(self, msg):
        """(total, ids, next_cursor) or raises ValueError(rc, message)."""
        return self._result(*self._ask("Q " + msg.SerializeToString().hex()))

    def expr(self, text):
        return self._result(*self._ask("E " + text))

    def time(self, msg, runs):
        line, _ = self._ask("T %d %s" % (runs, msg.SerializeToString().hex()))
        parts = line.split()
        if parts[0] != "TIME":
            raise ValueError(line)
        return float(parts[1]), int(parts[3])

    def reload(self):
        line, _ = self._ask("R")
        return line

    @staticmethod
    def _result(status, got):
        parts = status.split(" ", 2)
        if parts[0] == "ERR":
            raise ValueError(int(parts[1]), parts[2])
        _, total, returned, cursor = status.split()
        assert int(returned) == len(got)
        return int(total), got, "" if cursor == "-" else cursor

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)
