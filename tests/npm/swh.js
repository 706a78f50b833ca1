#!/usr/bin/env node
/*
 * swh.js - the official Standard Webhooks library (npm "standardwebhooks",
 * pinned in package.json) on the command line, so the integration tests can
 * hold our signed callbacks to it (tests/integration/test_webhook_receiver_interop.py).
 *
 *   node swh.js sign [--id ID] [--ts SECONDS] SECRET [SECRET ...]
 *       stdin: the payload bytes. Prints {"webhook-id", "webhook-timestamp",
 *       "webhook-signature"} as JSON: one "v1,..." per secret, space-separated,
 *       as a sender rotating its secret sends them. The id defaults to a
 *       random msg_..., the timestamp to now.
 *   node swh.js verify SECRET
 *       stdin: {"headers": {...}, "body_b64": "..."}. Runs Webhook.verify on
 *       the exact body bytes; prints "ok" (exit 0) or the library's error
 *       (exit 1).
 *
 * Nothing here signs or checks by itself: every signature comes from the
 * library, which is the point.
 */
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const { Webhook } = require("standardwebhooks");

/* all of standard input, as bytes (the payload is signed byte for byte) */
function stdin() {
    return fs.readFileSync(0);
}

function sign(args) {
    let id = "msg_" + crypto.randomBytes(12).toString("hex");
    let ts = Math.floor(Date.now() / 1000);
    const secrets = [];
    for (let i = 0; i < args.length; i++) {
        if (args[i] === "--id") id = args[++i];
        else if (args[i] === "--ts") ts = Number.parseInt(args[++i], 10);
        else secrets.push(args[i]);
    }
    if (secrets.length === 0) throw new Error("sign: at least one SECRET");
    const payload = stdin();
    const when = new Date(ts * 1000);
    const sigs = secrets.map((s) => new Webhook(s).sign(id, when, payload));
    process.stdout.write(JSON.stringify({
        "webhook-id": id,
        "webhook-timestamp": String(ts),
        "webhook-signature": sigs.join(" "),
    }) + "\n");
}

function verify(args) {
    if (args.length !== 1) throw new Error("verify: exactly one SECRET");
    const req = JSON.parse(stdin().toString("utf8"));
    const body = Buffer.from(req.body_b64, "base64");
    try {
        new Webhook(args[0]).verify(body, req.headers);
    } catch (e) {
        process.stdout.write(`${e.name}: ${e.message}\n`);
        process.exit(1);
    }
    process.stdout.write("ok\n");
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === "sign") sign(rest);
else if (cmd === "verify") verify(rest);
else {
    process.stderr.write("usage: swh.js sign [--id ID] [--ts SECONDS] SECRET... | verify SECRET\n");
    process.exit(2);
}
