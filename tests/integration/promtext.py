"""A strict parser for the Prometheus text exposition format 0.0.4.

Used by tests to check what /metrics serves: every sample line must parse,
belong to a family announced by # TYPE, and histograms must be cumulative
with +Inf equal to _count. Returns {(name, frozenset(labels.items())): value}.
"""
import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"^({NAME})(\{{(.*)\}})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def _labels(text):
    out, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise ValueError(f"bad label set {{{text}}} at {pos}")
        out[m.group(1)] = (m.group(2).replace("\\n", "\n").replace('\\"', '"')
                           .replace("\\\\", "\\"))
        pos = m.end()
    return out


def _value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    return float(s)


def parse(text):
    types, samples = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"duplicate TYPE for {name}"
            types[name] = typ
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"unparseable sample line: {line!r}"
        name, labels, value = m.group(1), _labels(m.group(3) or ""), _value(m.group(4))
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample {name} has no # TYPE line before it"
        samples[(name, frozenset(labels.items()))] = value
    for name, typ in types.items():
        if typ != "histogram":
            continue
        series = {}
        for (n, labels), v in samples.items():
            if n == name + "_bucket":
                d = dict(labels)
                le = d.pop("le")
                series.setdefault(frozenset(d.items()), []).append((_value(le), v))
        for labels, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), f"{name} buckets not cumulative"
            assert math.isinf(buckets[-1][0]), f"{name} lacks +Inf bucket"
            assert samples[(name + "_count", labels)] == counts[-1], f"{name} +Inf != count"
    return types, samples


def value(samples, name, **labels):
    """The value of one sample, or None."""
    return samples.get((name, frozenset(labels.items())))
