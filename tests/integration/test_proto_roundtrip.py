"""test_proto_roundtrip - C (protobuf-c) and Python (protoc) agree on the wire.

For every message type in every generated *_pb2 module (nested types and map
entries included):

1. `proto-roundtrip encode <name>` (C) writes the message with every field
   set by the fill rule; Python parses it and compares it with the same
   message built here by the same rule.
2. Python builds that message, `proto-roundtrip decode <name>` (C) unpacks
   and re-packs it, and Python parses the result and compares again.

It also checks that C and Python know the same set of messages, so a message
missing from the C program's table fails here instead of going untested.

The fill rule must stay identical to the one in
tests/programs/proto-roundtrip/main.c; n is the field number:
integers n*7+1; enums the smallest non-zero value (0 if none); bool True;
string "s<n>"; bytes b"b<n>"; float and double n+0.5; messages filled one
level deeper (top message = depth 1, deeper than MAX_DEPTH left unset);
repeated fields the same value twice; maps one entry (key = rule for the
entry's field 1, value = rule for field 2); of each oneof only the member
with the lowest field number.

Paths: binaries in $RTE_BUILD_DIR/bin, generated Python in
$RTE_BUILD_DIR/gen/py (RTE_BUILD_DIR defaults to <repo>/build). Needs no
Redis or Kafka.
"""

import importlib
import os
import pathlib
import subprocess
import sys

import pytest
from google.protobuf import descriptor as pb_descriptor

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD_DIR = pathlib.Path(os.environ.get("RTE_BUILD_DIR", REPO / "build"))
ROUNDTRIP = BUILD_DIR / "bin" / "proto-roundtrip"
PY_GEN = BUILD_DIR / "gen" / "py"

# Must match MAX_DEPTH and REPEAT_COUNT in main.c.
MAX_DEPTH = 3
REPEAT_COUNT = 2

FD = pb_descriptor.FieldDescriptor
INT_TYPES = {
    FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32, FD.TYPE_UINT32, FD.TYPE_FIXED32,
    FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64, FD.TYPE_UINT64, FD.TYPE_FIXED64,
}


def load_message_classes():
    """Map full name -> message class for every message in $RTE_BUILD_DIR/gen/py."""
    sys.path.insert(0, str(PY_GEN))
    classes = {}

    def add(cls):
        classes[cls.DESCRIPTOR.full_name] = cls
        for nested in cls.DESCRIPTOR.nested_types:
            add(getattr(cls, nested.name))

    for path in sorted(PY_GEN.glob("*_pb2.py")):
        module = importlib.import_module(path.stem)
        for name in module.DESCRIPTOR.message_types_by_name:
            add(getattr(module, name))
    return classes


MESSAGE_CLASSES = load_message_classes()


def is_map(field):
    """True if field is a map<K, V> (a repeated field of a map-entry message)."""
    return (field.type == FD.TYPE_MESSAGE
            and field.message_type.GetOptions().map_entry)


def scalar_value(field):
    """The fill rule's value for a non-message field."""
    n = field.number
    if field.type in INT_TYPES:
        return n * 7 + 1
    if field.type == FD.TYPE_ENUM:
        nonzero = [v.number for v in field.enum_type.values if v.number != 0]
        return min(nonzero) if nonzero else 0
    if field.type == FD.TYPE_BOOL:
        return True
    if field.type == FD.TYPE_STRING:
        return "s%d" % n
    if field.type == FD.TYPE_BYTES:
        return b"b%d" % n
    if field.type in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return n + 0.5
    raise AssertionError("unhandled field type %d in %s" % (field.type, field.full_name))


def skipped_oneof_member(field):
    """True if field is in a oneof but is not its lowest-numbered member."""
    oneof = field.containing_oneof
    return oneof is not None and field.number != min(f.number for f in oneof.fields)


def fill_map(msg, field, depth):
    """Give map field one entry: key and value by the rule for the entry's fields."""
    entry = field.message_type
    key = scalar_value(entry.fields_by_number[1])
    value_field = entry.fields_by_number[2]
    container = getattr(msg, field.name)
    if value_field.type == FD.TYPE_MESSAGE:
        value = container[key]  # creates the entry with an empty value
        if depth + 2 <= MAX_DEPTH:
            fill_message(value, depth + 2)
    else:
        container[key] = scalar_value(value_field)


def fill_message(msg, depth=1):
    """Set every field of msg (at depth) by the fill rule; returns msg."""
    for field in msg.DESCRIPTOR.fields:
        if skipped_oneof_member(field):
            continue
        if field.label == FD.LABEL_REPEATED:
            if field.type != FD.TYPE_MESSAGE:
                getattr(msg, field.name).extend([scalar_value(field)] * REPEAT_COUNT)
            elif depth + 1 > MAX_DEPTH:
                continue  # elements would be too deep: leave empty
            elif is_map(field):
                fill_map(msg, field, depth)
            else:
                for _ in range(REPEAT_COUNT):
                    fill_message(getattr(msg, field.name).add(), depth + 1)
        elif field.type == FD.TYPE_MESSAGE:
            if depth + 1 <= MAX_DEPTH:
                sub = getattr(msg, field.name)
                sub.SetInParent()  # present even if the sub-message has no fields
                fill_message(sub, depth + 1)
        else:
            setattr(msg, field.name, scalar_value(field))
    return msg


def expected_message(name):
    """A new message of type name filled by the rule."""
    return fill_message(MESSAGE_CLASSES[name]())


def run_roundtrip(*args, stdin=b""):
    """Run the C program; returns its stdout, failing the test on a non-zero exit."""
    proc = subprocess.run([str(ROUNDTRIP), *args], input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert proc.returncode == 0, (
        "proto-roundtrip %s exited %d: %s"
        % (" ".join(args), proc.returncode, proc.stderr.decode(errors="replace")))
    return proc.stdout


def test_build_outputs_present():
    """The C program and the generated Python modules exist (else nothing is tested)."""
    assert ROUNDTRIP.is_file(), "%s missing: run make %s" % (ROUNDTRIP, "build/bin/proto-roundtrip")
    assert MESSAGE_CLASSES, "no *_pb2.py in %s: run make proto-py" % PY_GEN


def test_c_and_python_know_the_same_messages():
    """Every message protoc generated is in the C program's table, and no more."""
    c_names = set(run_roundtrip("list").decode().split())
    py_names = set(MESSAGE_CLASSES)
    assert sorted(py_names - c_names) == [], "add these to roots[] in proto-roundtrip/main.c"
    assert sorted(c_names - py_names) == [], "C knows messages Python does not"


@pytest.mark.parametrize("name", sorted(MESSAGE_CLASSES))
def test_fill_rule_sets_every_field(name):
    """The Python builder leaves out only what the rule leaves out (guards the rule itself)."""
    assert MAX_DEPTH >= 2, "top-level sub-messages must be within depth"
    msg = expected_message(name)
    set_numbers = {field.number for field, _ in msg.ListFields()}
    for field in msg.DESCRIPTOR.fields:
        zero_enum = (field.type == FD.TYPE_ENUM and field.label != FD.LABEL_REPEATED
                     and scalar_value(field) == 0)  # proto3 cannot tell 0 from unset
        if skipped_oneof_member(field) or zero_enum:
            continue
        assert field.number in set_numbers, "%s not set" % field.full_name


@pytest.mark.parametrize("name", sorted(MESSAGE_CLASSES))
def test_c_encode_python_decode(name):
    """What C encodes, Python parses to exactly the rule's message."""
    packed = run_roundtrip("encode", name)
    got = MESSAGE_CLASSES[name]()
    got.ParseFromString(packed)
    want = expected_message(name)
    assert got == want, "C encoded:\n%s\nexpected:\n%s" % (got, want)


@pytest.mark.parametrize("name", sorted(MESSAGE_CLASSES))
def test_python_encode_c_decode(name):
    """What Python encodes, C unpacks and re-packs without loss."""
    want = expected_message(name)
    packed = run_roundtrip("decode", name, stdin=want.SerializeToString())
    got = MESSAGE_CLASSES[name]()
    got.ParseFromString(packed)
    assert got == want, "after C decode/re-pack:\n%s\nexpected:\n%s" % (got, want)


def test_decode_rejects_garbage():
    """Bytes that are not a message make decode exit 2 with a reason."""
    proc = subprocess.run([str(ROUNDTRIP), "decode", "rte.v1.MemberCronEvent"],
                          input=b"\x0a\xff\xff\xff\xff\x0f", stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
    assert proc.returncode == 2
    assert b"do not unpack" in proc.stderr
