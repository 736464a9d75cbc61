// The one job (tests/interop/one_job.py) served by @grpc/grpc-js, node's gRPC stack.
// node server.js PROTO LINES_JSON MODE [CERT KEY]; MODE is plain or tls (grpc-js's server
// does not compress answers).
// Prints the port it listens on (127.0.0.1), then serves until killed.
"use strict";
const fs = require("fs");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [protoPath, linesPath, mode, certPath, keyPath] = process.argv.slice(2);
const JOB_ID = "5f0c4a8e-2b1d-4c3e-9f6a-7d8e9f0a1b2c";
const GAP = 7;
const GROUP = 25;
const lines = JSON.parse(fs.readFileSync(linesPath, "utf8"));
const hodei = grpc.loadPackageDefinition(
  protoLoader.loadSync(protoPath, { keepCase: true, longs: String, enums: String, defaults: true })
).hodei;
let streamed = false;

function entry(sequence) {
  const [line, isStderr] = lines[sequence - 1];
  const nanos = 1_700_000_000_000_000_000n + BigInt(sequence) * 1_000_000n;
  return {
    job_id: JOB_ID, line, is_stderr: isStderr, sequence: String(sequence),
    timestamp: { seconds: String(nanos / 1_000_000_000n), nanos: Number(nanos % 1_000_000_000n) },
  };
}

function notFound(id) {
  return { code: grpc.status.NOT_FOUND, details: `job ${id} not found` };
}

const jobs = {
  GetJob(call, callback) {
    if (call.request.job_id.value !== JOB_ID) return callback(notFound(call.request.job_id.value));
    callback(null, {
      job: { job_id: { value: JOB_ID }, name: "interop job" },
      status: streamed ? "JOB_STATUS_COMPLETED" : "JOB_STATUS_RUNNING",
    });
  },
};

const logs = {
  async SubscribeLogs(call) {
    if (call.request.job_id !== JOB_ID) {
      call.emit("error", notFound(call.request.job_id));
      return;
    }
    const metadata = new grpc.Metadata();
    metadata.set("x-hodei-sequences", "exact");
    call.sendMetadata(metadata);
    for (let sequence = 1; sequence <= lines.length; sequence++) {
      if (sequence !== GAP) call.write(entry(sequence));
      if (sequence % GROUP === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    streamed = true;
    call.end();
  },
  GetLogs(call, callback) {
    if (call.request.job_id !== JOB_ID) return callback(notFound(call.request.job_id));
    const since = Number(call.request.since_sequence);
    const last = Math.min(lines.length, since + (call.request.limit || 1000));
    const entries = [];
    for (let sequence = since + 1; sequence <= last; sequence++) entries.push(entry(sequence));
    callback(null, { entries, has_more: last < lines.length });
  },
};

const server = new grpc.Server();
server.addService(hodei.JobExecutionService.service, jobs);
server.addService(hodei.LogStreamService.service, logs);
const credentials = mode === "tls"
  ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: fs.readFileSync(certPath), private_key: fs.readFileSync(keyPath) }], false)
  : grpc.ServerCredentials.createInsecure();
server.bindAsync("127.0.0.1:0", credentials, (error, port) => {
  if (error) {
    console.error(error.message);
    process.exit(1);
  }
  console.log(port);
});
