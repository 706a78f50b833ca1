"""docker/<service>.Dockerfile: one pattern for the five images, checked without a Docker daemon.

- the runtime stage installs the Debian package of every shared library the
  built binary links (objdump -p NEEDED -> the file ldconfig resolves ->
  dpkg -S), and nothing that the binary does not link beyond the few data
  packages a service reads (CA certificates, zone files);
- the build stage COPYs every file of the repository that building the
  binary reads: the files GNU make considers for the target (its debug
  trace) and the headers the compiler includes (gcc -MM);
- the build stage installs the -dev package of every pkg-config module the
  Makefile links;
- both stages are Debian 12, the image runs as a non-root uid, has no
  HEALTHCHECK, and the binary the runtime stage copies is the one built.

The parsing and the checks are functions, so the tests can also show that a
Dockerfile with a library or a COPY missing is refused.
"""
import functools
import os
import re
import shlex
import subprocess
import tempfile

import pytest

from conftest import BUILD, REPO, SERVICES, service_binary

# what debian:12-slim has without installing anything (Priority: required)
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "zlib1g"}
# packages a runtime stage may add although no binary links them: data read
# at run time (TLS roots for Stedi and member directory URLs; the IANA zones
# member-cron reads itself)
DATA_PACKAGES = {"ca-certificates"}
SERVICE_DATA_PACKAGES = {"member-cron": {"tzdata"}}


def dockerfile(service):
    return os.path.join(REPO, "docker", f"{service}.Dockerfile")


def parse(text):
    """The Dockerfile's stages: [{"from": str, "name": str|None, "lines": [instruction...]}]."""
    logical, cur = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        logical.append(cur + line)
        cur = ""
    stages = []
    for line in logical:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.match(r"^(\S+)(?:\s+AS\s+(\S+))?$", rest.strip(), re.I)
            stages.append({"from": m.group(1), "name": m.group(2), "lines": []})
        else:
            stages[-1]["lines"].append((word, rest.strip()))
    return stages


def image_env(service):
    """The environment the image's runtime stage sets (ENV), as a dict."""
    with open(dockerfile(service)) as f:
        stage = parse(f.read())[-1]
    env = {}
    for word, rest in stage["lines"]:
        if word != "ENV":
            continue
        args = shlex.split(rest)
        if len(args) >= 2 and "=" not in args[0]:
            env[args[0]] = " ".join(args[1:])
        else:
            env.update(a.split("=", 1) for a in args)
    return env


def apt_packages(stage):
    """Packages every `apt-get install` of a stage names."""
    pkgs = set()
    for word, rest in stage["lines"]:
        if word != "RUN":
            continue
        for cmd in re.split(r"&&|;", rest):
            args = shlex.split(cmd)
            if len(args) >= 2 and args[0] == "apt-get" and "install" in args:
                pkgs.update(a for a in args[args.index("install") + 1:] if not a.startswith("-"))
    return pkgs


def copied_paths(stage):
    """Context paths the stage COPYs (not --from another stage)."""
    out = []
    for word, rest in stage["lines"]:
        if word != "COPY":
            continue
        args = shlex.split(rest)
        if any(a.startswith("--from") for a in args):
            continue
        srcs = [a for a in args if not a.startswith("--")][:-1]
        out.extend(os.path.normpath(s).rstrip("/") for s in srcs)
    return out


def _path_forms(path):
    """A file's path as dpkg may have recorded it (usrmerge: /lib and /usr/lib alike)."""
    forms = []
    for p in (path, os.path.realpath(path)):
        forms.append(p)
        if p.startswith("/usr/lib/"):
            forms.append(p[len("/usr"):])
        elif p.startswith("/lib/"):
            forms.append("/usr" + p)
    return list(dict.fromkeys(forms))


def owning_packages(paths):
    """{path: the Debian package that ships it}, with one dpkg -S for all of them."""
    forms = {p: _path_forms(p) for p in paths}
    r = subprocess.run(["dpkg", "-S"] + sorted({f for fs in forms.values() for f in fs}),
                       capture_output=True, text=True)
    shipped = {}
    for line in r.stdout.splitlines():
        pkgs, _, f = line.partition(": ")
        shipped[f.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    out = {}
    for p, fs in forms.items():
        hit = [shipped[f] for f in fs if f in shipped]
        assert hit, f"no Debian package ships {p}"
        out[p] = hit[0]
    return out


def needed_packages(binary):
    """{library soname: package} for every NEEDED entry of the binary."""
    dump = subprocess.run(["objdump", "-p", binary], capture_output=True, text=True, check=True)
    sonames = re.findall(r"^\s*NEEDED\s+(\S+)", dump.stdout, re.M)
    assert sonames, f"objdump found no NEEDED entry in {binary}"
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    for so in sonames:
        assert so in where, f"ldd does not resolve {so} of {binary}"
    pkgs = owning_packages([where[so] for so in sonames])
    return {so: pkgs[where[so]] for so in sonames}


def runtime_problems(text, needed, service="cache-gateway"):
    """What is wrong with a Dockerfile's runtime package list for these needed packages."""
    stages = parse(text)
    runtime = apt_packages(stages[-1])
    problems = []
    for so, pkg in sorted(needed.items()):
        if pkg not in runtime and pkg not in BASE_IMAGE_PACKAGES:
            problems.append(f"{so} is in {pkg}, which the runtime stage does not install")
    linked = set(needed.values())
    for pkg in sorted(runtime - linked - DATA_PACKAGES - SERVICE_DATA_PACKAGES.get(service, set())):
        problems.append(f"the runtime stage installs {pkg}, which the binary does not link")
    for pkg in sorted(p for p in runtime if p.endswith("-dev")):
        problems.append(f"the runtime stage installs the development package {pkg}")
    return problems


@functools.lru_cache(maxsize=None)
def make_inputs(service):
    """Repository files building build/bin/<service> reads: make's prerequisites and the headers."""
    files = set()
    with tempfile.TemporaryDirectory() as tmp:
        rel = os.path.relpath(tmp, REPO) if tmp.startswith(REPO) else tmp
        # PKG_CFLAGS/PKG_LIBS only feed recipes; emptied, make does not run
        # pkg-config once per compile line of the dry run
        trace = subprocess.run(["make", "-n", "-B", "-d", "--no-print-directory", f"BUILD={rel}",
                                "PKG_CFLAGS=", "PKG_LIBS=", f"{rel}/bin/{service}"],
                               cwd=REPO, capture_output=True, text=True)
        assert trace.returncode == 0, trace.stderr[-2000:]
    for name in re.findall(r"Considering target file '([^']+)'", trace.stdout):
        p = os.path.normpath(os.path.join(REPO, name))
        if p.startswith(REPO + os.sep) and os.path.isfile(p):
            files.add(os.path.relpath(p, REPO))
    # the Makefile itself, and every header the compiler includes from the repository
    files.add("Makefile")
    pkg = subprocess.run(["pkg-config", "--cflags", "libh2o-evloop", "grpc", "rdkafka", "hiredis",
                          "libcurl", "libcjson", "libprotobuf-c", "openssl", "yaml-0.1"],
                         capture_output=True, text=True).stdout.split()
    sources = sorted(f for f in files if f.endswith(".c"))
    dep = subprocess.run(["gcc", "-MM", "-std=c11", "-D_GNU_SOURCE", "-DH2O_USE_LIBUV=0",
                          "-Ilibcommon/include", f"-I{os.path.join(BUILD, 'gen')}",
                          f"-Iservices/{service}"] + pkg + sources,
                         cwd=REPO, capture_output=True, text=True)
    assert dep.returncode == 0, dep.stderr[-2000:]
    for tok in dep.stdout.replace("\\\n", " ").split():
        if tok.endswith(":"):
            continue
        p = os.path.normpath(os.path.join(REPO, tok))
        if p.startswith(REPO + os.sep) and os.path.isfile(p) and not p.startswith(BUILD):
            files.add(os.path.relpath(p, REPO))
    return frozenset(files)


def copy_problems(text, inputs):
    """Inputs of the build that the build stage's COPY lines leave out."""
    stages = parse(text)
    copied = copied_paths(stages[0])
    missing = [f for f in sorted(inputs)
               if not any(f == c or f.startswith(c + "/") or c == "." for c in copied)]
    return [f"the build stage does not COPY {f}" for f in missing]


@functools.lru_cache(maxsize=None)
def pkgconfig_dev_packages():
    """The -dev packages that ship the pkg-config modules the Makefile links."""
    with open(os.path.join(REPO, "Makefile")) as f:
        m = re.search(r"^PKGS\s*:=\s*(.+)$", f.read(), re.M)
    pcs = {}
    for mod in m.group(1).split():
        path = subprocess.run(["pkg-config", "--variable=pcfiledir", mod], capture_output=True,
                              text=True, check=True).stdout.strip()
        pcs[mod] = os.path.join(path, f"{mod}.pc")
    pkgs = owning_packages(list(pcs.values()))
    return {mod: pkgs[pc] for mod, pc in pcs.items()}


@pytest.mark.parametrize("service", SERVICES)
def test_one_pattern(service):
    with open(dockerfile(service)) as f:
        text = f.read()
    stages = parse(text)
    assert len(stages) == 2, "multi-stage: a build stage and a runtime stage"
    assert stages[0]["name"] == "build"
    for st in stages:
        assert re.match(r"^debian:12(-slim)?$", st["from"]), st["from"]
    runtime = stages[-1]["lines"]
    words = [w for w, _ in runtime]
    assert "HEALTHCHECK" not in [w for st in stages for w, _ in st["lines"]]
    user = [r for w, r in runtime if w == "USER"]
    assert user, "the runtime stage sets USER"
    uid = user[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user[-1]}: a numeric non-root uid"
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN"), \
        "USER comes after the last RUN"
    run = [r for w, r in stages[0]["lines"] if w == "RUN" and "make " in r]
    assert run and f"build/bin/{service}" in run[-1], run
    from_build = [r for w, r in runtime if w == "COPY" and "--from=build" in r]
    assert from_build == [f"--from=build /src/build/bin/{service} /usr/local/bin/{service}"]
    assert [r for w, r in runtime if w == "ENTRYPOINT"] == [f'["/usr/local/bin/{service}"]']


@pytest.mark.parametrize("service", SERVICES)
def test_image_sets_no_config_variable(service):
    """An RTE_* variable in the image would override the config file the chart mounts."""
    assert [k for k in image_env(service) if k.startswith("RTE_")] == []


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_packages_cover_linked_libraries(service):
    binary = service_binary(service)
    with open(dockerfile(service)) as f:
        problems = runtime_problems(f.read(), needed_packages(binary), service)
    assert problems == []


@pytest.mark.parametrize("service", SERVICES)
def test_build_stage_copies_what_make_reads(service):
    if not os.path.isdir(os.path.join(REPO, "services", service)):
        pytest.skip(f"services/{service} is not in this tree yet")
    inputs = make_inputs(service)
    # sanity: the trace saw the service, libcommon and the protos
    assert f"services/{service}/main.c" in inputs
    assert any(f.startswith("libcommon/src/") for f in inputs)
    assert any(f.startswith("proto/") for f in inputs)
    assert any(f.startswith("libcommon/include/rte/") for f in inputs)
    with open(dockerfile(service)) as f:
        assert copy_problems(f.read(), inputs) == []


@pytest.mark.parametrize("service", SERVICES)
def test_build_stage_installs_every_pkgconfig_module(service):
    with open(dockerfile(service)) as f:
        build = apt_packages(parse(f.read())[0])
    missing = {m: p for m, p in pkgconfig_dev_packages().items() if p not in build}
    assert missing == {}, f"pkg-config modules whose -dev package the build stage lacks: {missing}"


def test_a_missing_library_or_copy_is_refused():
    """The checks catch what they are for: a library dropped, a -dev package, a COPY left out."""
    binary = service_binary("cache-gateway")
    with open(dockerfile("cache-gateway")) as f:
        text = f.read()
    needed = needed_packages(binary)
    assert needed["libhiredis.so.0.14"] == "libhiredis0.14"
    assert runtime_problems(text, needed) == []
    dropped = text.replace(" libhiredis0.14", "")
    assert runtime_problems(dropped, needed) == [
        "libhiredis.so.0.14 is in libhiredis0.14, which the runtime stage does not install"]
    extra = text.replace(" libyaml-0-2", " libyaml-0-2 libyaml-dev")
    assert "the runtime stage installs the development package libyaml-dev" in \
        runtime_problems(extra, needed)
    tz = text.replace(" libyaml-0-2", " libyaml-0-2 tzdata")
    assert runtime_problems(tz, needed) == [
        "the runtime stage installs tzdata, which the binary does not link"]
    inputs = make_inputs("cache-gateway")
    assert copy_problems(text, inputs) == []
    no_proto = text.replace("COPY proto ./proto\n", "")
    problems = copy_problems(no_proto, inputs)
    assert problems and all(p.startswith("the build stage does not COPY proto/") for p in problems)
