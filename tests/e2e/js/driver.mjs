// Drive the official @fal-ai/client against a live fal-lipsync-mock.
//
//   node driver.mjs <scenario> <base_url> <mode>
//
// base_url: the live mock's origin, e.g. http://127.0.0.1:8080 (it serves each fal host under a
//           path prefix: /queue, /run, /rest, /cdn, and the JS proxy route /api/fal/proxy).
// mode:     "middleware" (requestMiddleware rewrites the fal hosts to the prefixes) or
//           "proxy" (proxyUrl {url: base/api/fal/proxy, when: "always"}; the mock dispatches on
//           the x-fal-target-url header).
//
// Each scenario prints exactly ONE line of JSON on stdout and exits 0. On an unexpected failure it
// prints {"error": {name, message, status, body, ...}} and exits 1; usage errors exit 64; the hard
// timeout prints {"error": {"name": "DriverTimeout", ...}} and exits 124. Every scenario output
// carries "trace": every HTTP call the client made (through its `fetch`), in order.

import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createFalClient } from "@fal-ai/client";

const ENDPOINT = "fal-ai/lipsync";
const INPUT = Object.freeze({
  video_url: "https://example.com/v.mp4",
  audio_url: "https://example.com/a.mp3",
});
const UNKNOWN_ID = "00000000-0000-4000-8000-000000000000";
const POLL_MS = 50;
const MAX_POLLS = 200;
const HARD_TIMEOUT_MS = Number(process.env.FAL_E2E_DRIVER_TIMEOUT_MS || 20000);

// ---------------------------------------------------------------------------------------------
// output helpers

function emit(obj, code) {
  const line = JSON.stringify(obj) + "\n";
  // stdout to a pipe is synchronous on Linux, but wait for the flush anyway.
  process.stdout.write(line, () => process.exit(code));
}

function errorInfo(err) {
  if (err === null || typeof err !== "object") {
    return { name: typeof err, message: String(err) };
  }
  const info = {
    name: err.name ?? err.constructor?.name ?? "Error",
    message: err.message ?? String(err),
  };
  if ("status" in err) info.status = err.status;
  if ("body" in err) info.body = err.body ?? null;
  if ("requestId" in err) info.requestId = err.requestId;
  if (err.cause) info.cause = errorInfo(err.cause);
  if (err.code) info.code = err.code;
  return info;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const clone = (v) => (v === undefined ? null : JSON.parse(JSON.stringify(v)));
const now = () => performance.now();
const round = (ms) => Math.round(ms * 10) / 10;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function attempt(fn) {
  try {
    const value = await fn();
    return { ok: true, value: clone(value) };
  } catch (err) {
    return { ok: false, error: errorInfo(err) };
  }
}

// Deterministic byte patterns.
function pattern(n, mul, add) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * mul + add) & 0xff;
  return out;
}

// ---------------------------------------------------------------------------------------------
// client construction

function makeTracingFetch(trace, t0) {
  const realFetch = globalThis.fetch;
  return async (input, init = {}) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const headers = new Headers(init.headers ?? {});
    const entry = {
      method: (init.method ?? "GET").toUpperCase(),
      url,
      target: headers.get("x-fal-target-url"),
      authorization: headers.get("authorization"),
      t_ms: round(now() - t0),
    };
    trace.push(entry);
    try {
      const res = await realFetch(input, init);
      entry.status = res.status;
      entry.content_type = res.headers.get("content-type");
      return res;
    } catch (err) {
      entry.error = errorInfo(err);
      throw err;
    }
  };
}

function makeClient(base, mode, trace, t0) {
  const fetch = makeTracingFetch(trace, t0);
  if (mode === "middleware") {
    const MAP = [
      ["https://queue.fal.run", `${base}/queue`],
      ["https://fal.run", `${base}/run`],
      ["https://rest.fal.ai", `${base}/rest`],
    ];
    const rewrite = (u) => {
      for (const [from, to] of MAP) {
        if (u === from || u.startsWith(from + "/") || u.startsWith(from + "?")) {
          return to + u.slice(from.length);
        }
      }
      return u;
    };
    return createFalClient({
      credentials: "test-key",
      fetch,
      requestMiddleware: async (req) => ({ ...req, url: rewrite(req.url) }),
    });
  }
  if (mode === "proxy") {
    return createFalClient({
      credentials: "test-key",
      fetch,
      proxyUrl: { url: `${base}/api/fal/proxy`, when: "always" },
    });
  }
  throw new UsageError(`unknown mode ${JSON.stringify(mode)}: use middleware or proxy`);
}

class UsageError extends Error {
  constructor(message) {
    super(message);
    this.name = "UsageError";
  }
}

// ---------------------------------------------------------------------------------------------
// scenarios: each gets {fal, base, trace, t0} and returns a JSON-able object

function recordUpdate(updates, t0) {
  return (status) => {
    updates.push({ ...clone(status), t_ms: round(now() - t0) });
  };
}

function logKey(log) {
  return JSON.stringify([log?.timestamp, log?.level, log?.source, log?.message]);
}

function duplicates(logs) {
  const seen = new Set();
  const dups = [];
  for (const log of logs ?? []) {
    const k = logKey(log);
    if (seen.has(k)) dups.push(log);
    seen.add(k);
  }
  return dups;
}

async function subscribeScenario({ fal, t0 }, extra) {
  const updates = [];
  let enqueued = null;
  let completedAt = null;
  const onUpdate = recordUpdate(updates, t0);
  const start = now();
  const result = await fal.subscribe(ENDPOINT, {
    input: { ...INPUT },
    logs: true,
    pollInterval: POLL_MS,
    onEnqueue: (id) => {
      enqueued = id;
    },
    onQueueUpdate: (status) => {
      if (status?.status === "COMPLETED" && completedAt === null) completedAt = now();
      onUpdate(status);
    },
    ...extra,
  });
  const resolvedAt = now();
  return {
    data: result.data,
    requestId: result.requestId,
    enqueued_request_id: enqueued,
    updates,
    statuses: updates.map((u) => u.status),
    ms_total: round(resolvedAt - start),
    ms_after_completed: completedAt === null ? null : round(resolvedAt - completedAt),
  };
}

async function subscribePolling(ctx) {
  return subscribeScenario(ctx, {});
}

async function subscribeStreaming(ctx) {
  const out = await subscribeScenario(ctx, { mode: "streaming" });
  const last = out.updates.at(-1);
  const finalLogs = Array.isArray(last?.logs) ? last.logs : [];
  const dups = duplicates(finalLogs);
  // The client accumulates the logs of every event into one array; record each event's count.
  return {
    ...out,
    final_log_messages: finalLogs.map((l) => l.message),
    log_counts: out.updates.map((u) => (Array.isArray(u.logs) ? u.logs.length : null)),
    duplicate_logs: dups,
    has_duplicates: dups.length > 0,
  };
}

async function pollUntilCompleted(fal, requestId, logs) {
  const seen = [];
  for (let i = 0; i < MAX_POLLS; i++) {
    const status = await fal.queue.status(ENDPOINT, { requestId, logs });
    seen.push(clone(status));
    if (status?.status === "COMPLETED") return { statuses: seen, completed: true };
    await sleep(POLL_MS);
  }
  return { statuses: seen, completed: false };
}

async function queueOps({ fal }) {
  // 1. submit -> status until COMPLETED -> result
  const submitted = clone(await fal.queue.submit(ENDPOINT, { input: { ...INPUT } }));
  const firstId = submitted.request_id;
  const polled = await pollUntilCompleted(fal, firstId, true);
  const result = clone(await fal.queue.result(ENDPOINT, { requestId: firstId }));

  // 2. submit a second one and cancel it immediately
  const submitted2 = clone(await fal.queue.submit(ENDPOINT, { input: { ...INPUT } }));
  const secondId = submitted2.request_id;
  const cancel2 = await attempt(() => fal.queue.cancel(ENDPOINT, { requestId: secondId }));
  const polled2 = await pollUntilCompleted(fal, secondId, false);
  const result2 = await attempt(() => fal.queue.result(ENDPOINT, { requestId: secondId }));

  // 3. cancel of the completed first request
  const cancelCompleted = await attempt(() => fal.queue.cancel(ENDPOINT, { requestId: firstId }));

  // 4. unknown request id
  const unknownStatus = await attempt(() =>
    fal.queue.status(ENDPOINT, { requestId: UNKNOWN_ID, logs: false }),
  );
  const unknownResult = await attempt(() => fal.queue.result(ENDPOINT, { requestId: UNKNOWN_ID }));
  const unknownCancel = await attempt(() => fal.queue.cancel(ENDPOINT, { requestId: UNKNOWN_ID }));

  return {
    first: {
      submit: submitted,
      statuses: polled.statuses,
      completed: polled.completed,
      result,
    },
    second: {
      submit: submitted2,
      cancel: cancel2,
      statuses: polled2.statuses,
      completed: polled2.completed,
      result: result2,
    },
    cancel_completed: cancelCompleted,
    unknown: { status: unknownStatus, result: unknownResult, cancel: unknownCancel },
  };
}

async function resultEarly({ fal }) {
  // Fetch the result of a request that has not been polled yet (so, under polls:N, not finished).
  const submitted = clone(await fal.queue.submit(ENDPOINT, { input: { ...INPUT } }));
  const early = await attempt(() => fal.queue.result(ENDPOINT, { requestId: submitted.request_id }));
  const polled = await pollUntilCompleted(fal, submitted.request_id, false);
  const late = await attempt(() => fal.queue.result(ENDPOINT, { requestId: submitted.request_id }));
  return { submit: submitted, early, completed: polled.completed, late };
}

async function run({ fal }) {
  const result = await fal.run(ENDPOINT, { input: { ...INPUT } });
  return { data: result.data, requestId: result.requestId };
}

async function download(url) {
  const res = await fetch(url);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    url,
    status: res.status,
    content_type: res.headers.get("content-type"),
    length: bytes.length,
    sha256: sha256(bytes),
    head_hex: Buffer.from(bytes.slice(0, 16)).toString("hex"),
  };
}

async function storageUpload({ fal }) {
  const bytes = pattern(1000, 31, 7);
  const url = await fal.storage.upload(new Blob([bytes], { type: "audio/mpeg" }));
  const got = await download(url);
  const sent = sha256(bytes);
  return {
    url,
    sent_length: bytes.length,
    sha256_sent: sent,
    status: got.status,
    content_type: got.content_type,
    length: got.length,
    sha256_got: got.sha256,
    match: got.status === 200 && got.sha256 === sent,
  };
}

async function autoUpload({ fal }) {
  const videoBytes = pattern(2048, 13, 1);
  const audioUri = "data:audio/mpeg;base64,SUQz";
  let enqueued = null;
  const result = await fal.subscribe(ENDPOINT, {
    input: { video_url: new Blob([videoBytes], { type: "video/mp4" }), audio_url: audioUri },
    pollInterval: POLL_MS,
    onEnqueue: (id) => {
      enqueued = id;
    },
  });
  return {
    data: result.data,
    requestId: result.requestId,
    enqueued_request_id: enqueued,
    video_sha256: sha256(videoBytes),
    video_length: videoBytes.length,
    audio_url: audioUri,
  };
}

async function outputDownload({ fal }) {
  const result = await fal.subscribe(ENDPOINT, { input: { ...INPUT }, pollInterval: POLL_MS });
  const video = result.data?.video ?? null;
  const got = video?.url ? await download(video.url) : null;
  return { data: result.data, requestId: result.requestId, download: got };
}

async function submitOptions({ fal }) {
  // Every optional submit knob the client has (PROTOCOL.md §3); the journal shows the wire.
  const submitted = await fal.queue.submit(ENDPOINT, {
    input: { ...INPUT },
    webhookUrl: "http://inbox.fal-mock.invalid/cb", // the mock's inbox: webhooks go to loopback or it
    priority: "low",
    hint: "h1",
    startTimeout: 30,
    headers: { "X-Custom-Header": "yes" },
  });
  return { submit: clone(submitted) };
}

async function invalidInput({ fal }) {
  // audio_url missing: fal reports validation errors as 422 {detail: [{loc, msg, type}]}, which
  // the client raises as ValidationError, whether at submit or when fetching the result.
  let enqueued = null;
  let outcome;
  let fieldErrors = null;
  try {
    const value = await fal.subscribe(ENDPOINT, {
      input: { video_url: INPUT.video_url },
      pollInterval: POLL_MS,
      onEnqueue: (id) => {
        enqueued = id;
      },
    });
    outcome = { ok: true, value: clone(value) };
  } catch (err) {
    outcome = { ok: false, error: errorInfo(err) };
    if (typeof err?.getFieldErrors === "function") {
      fieldErrors = clone(err.getFieldErrors("audio_url"));
    }
  }
  return { outcome, enqueued_request_id: enqueued, audio_url_field_errors: fieldErrors };
}

async function subscribeTimeout({ fal }) {
  // Run with a policy under which the job never finishes by itself (e.g. "virtual"): the client
  // gives up after `timeout` ms, fires a cancel (without awaiting it) and rejects.
  let enqueued = null;
  const start = now();
  const outcome = await attempt(() =>
    fal.subscribe(ENDPOINT, {
      input: { ...INPUT },
      pollInterval: POLL_MS,
      timeout: 500,
      onEnqueue: (id) => {
        enqueued = id;
      },
    }),
  );
  const rejectedAfter = round(now() - start);
  await sleep(300); // let the fire-and-forget cancel land
  const after = enqueued
    ? await attempt(() => fal.queue.status(ENDPOINT, { requestId: enqueued, logs: false }))
    : null;
  return {
    outcome,
    enqueued_request_id: enqueued,
    ms_until_rejected: rejectedAfter,
    status_after: after,
  };
}

const SCENARIOS = {
  subscribe_polling: subscribePolling,
  subscribe_streaming: subscribeStreaming,
  queue_ops: queueOps,
  result_early: resultEarly,
  run,
  storage_upload: storageUpload,
  auto_upload: autoUpload,
  output_download: outputDownload,
  submit_options: submitOptions,
  invalid_input: invalidInput,
  subscribe_timeout: subscribeTimeout,
};

// ---------------------------------------------------------------------------------------------

async function main(argv) {
  const [scenario, baseArg, mode] = argv;
  if (!scenario || !baseArg || !mode || !(scenario in SCENARIOS)) {
    throw new UsageError(
      `usage: node driver.mjs <scenario> <base_url> <middleware|proxy>; scenarios: ${Object.keys(
        SCENARIOS,
      ).join(", ")}`,
    );
  }
  const base = baseArg.replace(/\/+$/, "");
  const trace = TRACE;
  const t0 = now();
  const fal = makeClient(base, mode, trace, t0);
  const ctx = { fal, base, mode, trace, t0 };
  const out = await SCENARIOS[scenario](ctx);
  return { scenario, mode, ...out, ms_scenario: round(now() - t0), trace };
}

const TRACE = [];

const timer = setTimeout(() => {
  emit(
    {
      error: {
        name: "DriverTimeout",
        message: `scenario did not finish within ${HARD_TIMEOUT_MS} ms`,
        status: null,
        body: null,
      },
      trace: TRACE,
    },
    124,
  );
}, HARD_TIMEOUT_MS);

main(process.argv.slice(2)).then(
  (out) => {
    clearTimeout(timer);
    emit(out, 0);
  },
  (err) => {
    clearTimeout(timer);
    const info = errorInfo(err);
    info.status ??= null;
    info.body ??= null;
    emit({ error: info, trace: TRACE }, err instanceof UsageError ? 64 : 1);
  },
);
