// validate.js - check rendered Kubernetes objects against the API schemas,
// offline, as strictly as `kubectl apply --validate=strict` would.
//
// Input (stdin): a JSON array of objects (tests/deploy turns the YAML that
// `helm template` prints into it). Output (stdout): a JSON array with one
// entry per object, {"ref": "Kind/name", "errors": ["path: message", ...]},
// an empty errors list meaning the object is valid. Exit 0 when every object
// is valid, 1 when any is not, 2 on bad input.
//
// The schemas: kubernetes-models compiles the Kubernetes API's OpenAPI
// definitions (the 1.30 API: it knows the pod-level appArmorProfile and the
// Service's trafficDistribution) into JSON Schema validators, and
// @kubernetes-models/prometheus-operator those of the Prometheus Operator's
// CRDs (ServiceMonitor, PrometheusRule). They check types, required fields,
// formats and enumerations. The OpenAPI definitions do not forbid unknown
// fields (the API server does that itself, in strict field validation), so
// each object is handed to its validator behind a Proxy that records which
// fields the validator looked up: a field of an object that the validator
// never read, in an object whose keys it did not enumerate (a map such as
// labels), is a field the schema does not have, and is reported as unknown.
//
// An object whose apiVersion/kind has no schema in either package is an
// error: nothing is passed unchecked.
"use strict";

const path = require("path");

function schemaModule(apiVersion, kind) {
    const slash = apiVersion.indexOf("/");
    const group = slash < 0 ? "" : apiVersion.slice(0, slash);
    const version = apiVersion.slice(slash + 1);
    const camel = (s) =>
        s
            .split(/[.-]/)
            .filter((p) => p.length > 0)
            .map((p) => p[0].toUpperCase() + p.slice(1))
            .join("");
    const v = camel(version);
    const candidates = [];
    if (group === "") {
        candidates.push(["kubernetes-models", `IoK8sApiCoreV${version.slice(1)}${kind}`]);
    } else {
        const short = group.replace(/\.k8s\.io$/, "");
        candidates.push(["kubernetes-models", `IoK8sApi${camel(short)}${v}${kind}`]);
        candidates.push(["@kubernetes-models/prometheus-operator", `${camel(group)}${v}${kind}`]);
    }
    for (const [pkg, name] of candidates) {
        let mod;
        try {
            // the packages' "exports" do not list _schemas/: load the file by path
            mod = require(path.join(__dirname, "node_modules", pkg, "_schemas", name + ".js"));
        } catch (e) {
            continue;
        }
        if (typeof mod.validate === "function") return mod.validate;
    }
    return null;
}

// wrap value so that the fields read and whether its keys were enumerated
// are recorded in records (one record per object or array reached)
function track(value, where, records) {
    if (value === null || typeof value !== "object") return value;
    const rec = { where, value, read: new Set(), enumerated: false };
    records.push(rec);
    const children = new Map();
    return new Proxy(value, {
        get(target, key, receiver) {
            const v = Reflect.get(target, key, receiver);
            if (typeof key !== "string") return v;
            rec.read.add(key);
            if (v === null || typeof v !== "object") return v;
            if (!children.has(key)) children.set(key, track(v, `${where}/${key}`, records));
            return children.get(key);
        },
        has(target, key) {
            if (typeof key === "string") rec.read.add(key);
            return Reflect.has(target, key);
        },
        ownKeys(target) {
            rec.enumerated = true;
            return Reflect.ownKeys(target);
        },
    });
}

function check(obj) {
    const ref = `${obj && obj.kind}/${obj && obj.metadata && obj.metadata.name}`;
    if (!obj || typeof obj !== "object" || typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
        return { ref, errors: ["/: not a Kubernetes object (apiVersion and kind are required)"] };
    }
    const validate = schemaModule(obj.apiVersion, obj.kind);
    if (validate === null) {
        return { ref, errors: [`/: no schema for ${obj.apiVersion} ${obj.kind}`] };
    }
    const records = [];
    const ok = validate(track(obj, "", records));
    const errors = [];
    if (!ok) {
        for (const e of validate.errors || []) {
            errors.push(`${e.instancePath || "/"}: ${e.keyword} ${JSON.stringify(e.params)}`);
        }
    }
    for (const rec of records) {
        if (Array.isArray(rec.value) || rec.enumerated) continue;
        for (const key of Object.keys(rec.value)) {
            if (!rec.read.has(key)) errors.push(`${rec.where}/${key}: unknown field`);
        }
    }
    return { ref, errors };
}

function main() {
    let input = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => (input += chunk));
    process.stdin.on("end", () => {
        let objs;
        try {
            objs = JSON.parse(input);
        } catch (e) {
            process.stderr.write(`validate.js: stdin is not JSON: ${e.message}\n`);
            process.exit(2);
        }
        if (!Array.isArray(objs)) {
            process.stderr.write("validate.js: stdin must be a JSON array of objects\n");
            process.exit(2);
        }
        const results = objs.map(check);
        process.stdout.write(JSON.stringify(results) + "\n");
        process.exit(results.some((r) => r.errors.length > 0) ? 1 : 0);
    });
}

main();
