"""member_query_ab.py - member_dir alone, two builds alternated, on some of the 12 examples.

Usage: member_query_ab.py MEMBERS.jsonl BUILD_DIR BASE_BUILD_DIR [RUNS [ROUNDS]]

Loads MEMBERS (tools/member-gen JSONL) into BUILD_DIR/bin/member-query and
BASE_BUILD_DIR/bin/member-query at once, then for Examples 1, 3, 11 and 12
of member_query_bench.py takes each build's p50 of RUNS resolves (default
21) ROUNDS times (default 5), alternating which build goes first, and
prints the median of those p50s per build and base/this. No PostgreSQL:
a before/after of a member_dir change with less noise than two separate
runs of `make bench-member-query` on a shared machine.
"""
import os
import statistics
import sys
import threading

import member_query_bench as mb

QUERIES = ["1 VPC in CA", "11 recent enrollment", "3 family subscribers", "12 re-engagement"]


def main():
    path, build, base_build = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 21
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    sys.path.insert(0, os.path.join(build, "gen", "py"))
    import batch_eligibility_pb2 as be
    import eligibility_pb2 as el

    dirs = {}

    def load(name, b):
        dirs[name] = mb.MemberDir(b, path)

    threads = [threading.Thread(target=load, args=a) for a in (("this", build),
                                                               ("base", base_build))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(dirs) != 2:
        raise SystemExit("member_query_ab: a member-query did not load %s" % path)
    print(dirs["this"].event_index())
    examples = {name: msg for name, msg, _, _ in mb.examples(be, el)}
    print("%-24s %12s %12s %10s" % ("query", "this_ms", "base_ms", "base/this"))
    for name in QUERIES:
        p50 = {"this": [], "base": []}
        for r in range(rounds):
            for k in ("this", "base") if r % 2 == 0 else ("base", "this"):
                p50[k].append(dirs[k].p50(examples[name], runs))
        a, b = statistics.median(p50["this"]), statistics.median(p50["base"])
        print("%-24s %12.3f %12.3f %10.2f" % (name, a, b, b / max(a, 1e-3)))


if __name__ == "__main__":
    main()
