// A Node.js client of Ponder's gateway: @grpc/grpc-js with the protos loaded at run time by
// @grpc/proto-loader (no generated code). Runs a reflection workflow to completion, then
// creates a long-running one and follows it with WatchWorkflow until it ends.
//
//   node clients/node/ponder-client.mjs [--address 127.0.0.1:50051] [--key API_KEY] \
//     [--notify-url URL --notify-secret NAME] "topic"
//
// With --notify-url the created workflow carries a completion webhook (the URL, and the name of
// a webhook secret configured on the gateway); the client then waits for its delivery to end.
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
  const delivery = workflow.notificationDelivery;
  return {
    name: workflow.name,
    state: workflow.state,
    citations: (workflow.result?.citations ?? []).map((c) => c.url),
    traceId: workflow.traceId,
    ...(workflow.notification
      ? { webhook: { state: delivery.state, attempts: delivery.attempts, eventId: delivery.eventId } }
      : {}),
  };
}

const DELIVERY_OVER = ["NOTIFICATION_DELIVERY_STATE_DELIVERED", "NOTIFICATION_DELIVERY_STATE_FAILED"];

// GetWorkflow until the completion webhook is delivered or given up (or `seconds` pass).
async function delivered(client, name, metadata, seconds = 60) {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    const { workflow } = await unary(client, "GetWorkflow", { name }, metadata);
    if (DELIVERY_OVER.includes(workflow.notificationDelivery.state) || Date.now() > until) {
      return workflow;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function main() {
  const { values, positionals } = parseArgs({
    options: {
      address: { type: "string", default: "127.0.0.1:50051" },
      key: { type: "string" },
      "notify-url": { type: "string" },
      "notify-secret": { type: "string" },
    },
    allowPositionals: true,
  });
  const topic = positionals.join(" ") || "How do language agents use self-reflection?";
  const WorkflowService = loadWorkflowService();
  const client = new WorkflowService(values.address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (values.key) metadata.set("authorization", `Bearer ${values.key}`);

  const { workflow: ran } = await unary(client, "RunReflectionWorkflow", { topic }, metadata);
  console.log(`ran ${ran.name}: ${ran.state}, ${ran.result.citations.length} citations`);

  const workflow = { kind: "WORKFLOW_KIND_RESEARCH", topic };
  if (values["notify-url"]) {
    workflow.notification = {
      url: values["notify-url"],
      secretName: values["notify-secret"] ?? "",
    };
  }
  const { workflow: created } = await unary(client, "CreateWorkflow", { workflow }, metadata);
  console.log(`created ${created.name}: ${created.state}`);
  const last = await watch(client, created.name, metadata, (event) =>
    console.log(`  ${event.eventType} ${event.step?.name ?? ""} ${event.workflow.state}`),
  );
  let watched = last.workflow;
  if (watched.notification) {
    watched = await delivered(client, created.name, metadata);
    const delivery = watched.notificationDelivery;
    console.log(`webhook ${delivery.state} after ${delivery.attempts} attempt(s)`);
  }
  console.log(JSON.stringify({ run: summary(ran), watched: summary(watched) }));
  client.close();
}

main().catch((error) => {
  console.error(`ponder-client: ${error.code ?? ""} ${error.details ?? error.message}`);
  process.exit(1);
});
