// A Node.js client of Ponder's gateway: @grpc/grpc-js with the protos loaded at run time by
// @grpc/proto-loader (no generated code). Runs a reflection workflow to completion, then
// creates a long-running one and follows it with WatchWorkflow until it ends.
//
//   node clients/node/ponder-client.mjs [--address 127.0.0.1:50051] [--key API_KEY]
//     [--max-tokens N] [--max-cost USD] [--if-running join|reject|enqueue] "topic"
//
// --max-tokens / --max-cost: the workflow's budget (it stops with the best text so far before
// a model call that could go over); --if-running: what to do when an identical workflow is
// still running (WorkflowParameters.multitask_strategy).
//
// Prints what happens, then one JSON line: {"run": {...}, "watched": {...}} for scripts.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

function loadWorkflowService() {
  const definition = protoLoader.loadSync("ponder/workflow/v1/workflow_service.proto", {
    includeDirs: [path.join(ROOT, "protos"), path.join(ROOT, "third_party")],
    longs: String, // int64 as strings, as in proto3 JSON
    enums: String, // enum values by name
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).ponder.workflow.v1.WorkflowService;
}

function unary(client, method, request, metadata, seconds = 120) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + seconds * 1000);
    client[method](request, metadata, { deadline }, (error, reply) =>
      error ? reject(error) : resolve(reply),
    );
  });
}

function watch(client, name, metadata, onEvent) {
  return new Promise((resolve, reject) => {
    const call = client.WatchWorkflow({ name }, metadata);
    let last = null;
    call.on("data", (event) => {
      last = event;
      onEvent(event);
    });
    call.on("error", reject);
    call.on("end", () => resolve(last));
  });
}

function summary(workflow) {
  return {
    name: workflow.name,
    state: workflow.state,
    citations: (workflow.result?.citations ?? []).map((c) => c.url),
    traceId: workflow.traceId,
    maxTokens: workflow.parameters?.maxTokens ?? "0",
    usage: {
      tokens: Number(workflow.usage?.totalTokens ?? 0),
      costUsd: workflow.usage?.costUsd ?? 0,
    },
    stopReason: workflow.result?.stopReason ?? "STOP_REASON_UNSPECIFIED",
  };
}

async function main() {
  const { values, positionals } = parseArgs({
    options: {
      address: { type: "string", default: "127.0.0.1:50051" },
      key: { type: "string" },
      "max-tokens": { type: "string", default: "0" },
      "max-cost": { type: "string", default: "0" },
      "if-running": { type: "string", default: "join" },
    },
    allowPositionals: true,
  });
  const topic = positionals.join(" ") || "How do language agents use self-reflection?";
  const WorkflowService = loadWorkflowService();
  const client = new WorkflowService(values.address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (values.key) metadata.set("authorization", `Bearer ${values.key}`);

  const parameters = {
    maxTokens: values["max-tokens"],
    maxCostUsd: Number(values["max-cost"]),
    multitaskStrategy: `MULTITASK_STRATEGY_${values["if-running"].toUpperCase()}`,
  };
  const { workflow: ran } = await unary(
    client,
    "RunReflectionWorkflow",
    { topic, parameters },
    metadata,
  );
  console.log(
    `ran ${ran.name}: ${ran.state}, ${ran.result.citations.length} citations, ` +
      `${ran.usage?.totalTokens ?? 0} tokens ($${ran.usage?.costUsd ?? 0})`,
  );

  const { workflow: created } = await unary(
    client,
    "CreateWorkflow",
    { workflow: { kind: "WORKFLOW_KIND_RESEARCH", topic, parameters } },
    metadata,
  );
  console.log(`created ${created.name}: ${created.state}`);
  const last = await watch(client, created.name, metadata, (event) =>
    console.log(`  ${event.eventType} ${event.step?.name ?? ""} ${event.workflow.state}`),
  );
  console.log(JSON.stringify({ run: summary(ran), watched: summary(last.workflow) }));
  client.close();
}

main().catch((error) => {
  console.error(`ponder-client: ${error.code ?? ""} ${error.details ?? error.message}`);
  process.exit(1);
});
