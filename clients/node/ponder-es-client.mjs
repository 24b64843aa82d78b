// A Node.js client of Ponder's gateway on code generated from the protos: message and service
// definitions by @bufbuild/protoc-gen-es (clients/buf.gen.es.yaml, into clients/gen/es/), calls
// by @connectrpc/connect over its gRPC transport (HTTP/2). Runs a research-reflection workflow
// to completion, then starts one and follows it with WatchWorkflow, printing each step's
// progress (sources found, iteration scores) as it happens.
//
//   PATH="$PWD/node_modules/.bin:$PATH" npx --no-install buf generate \
//     --template clients/buf.gen.es.yaml --path protos/ponder           # once
//   node clients/node/ponder-es-client.mjs [--address 127.0.0.1:50051] [--key API_KEY] "topic"
//
// Prints what happens, then one JSON line: {"run": {...}, "watched": {...}} for scripts.
import { parseArgs } from "node:util";

import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  StepState,
  WorkflowEventType,
  WorkflowKind,
  WorkflowSchema,
  WorkflowService,
  WorkflowState,
} from "../gen/es/ponder/workflow/v1/workflow_service_pb.js";

function summary(workflow) {
  const json = toJson(WorkflowSchema, workflow);
  return {
    name: json.name,
    state: json.state,
    citations: (json.result?.citations ?? []).map((c) => c.url),
    traceId: json.traceId,
  };
}

function progress(step) {
  const facts = [];
  if (step.documentCount) facts.push(`${step.documentCount} documents`);
  if (step.iteration) facts.push(`iteration ${step.iteration}`);
  if (step.iterationScores.length) facts.push(`scores ${step.iterationScores.join(" -> ")}`);
  return `${step.name} ${StepState[step.state]}${facts.length ? ` (${facts.join(", ")})` : ""}`;
}

async function main() {
  const { values, positionals } = parseArgs({
    options: {
      address: { type: "string", default: "127.0.0.1:50051" },
      key: { type: "string" },
    },
    allowPositionals: true,
  });
  const topic = positionals.join(" ") || "How do language agents use self-reflection?";
  const transport = createGrpcTransport({ baseUrl: `http://${values.address}` });
  const client = createClient(WorkflowService, transport);
  const headers = values.key ? { authorization: `Bearer ${values.key}` } : {};

  const { workflow: ran } = await client.runWorkflow(
    { workflow: { kind: WorkflowKind.RESEARCH_REFLECTION, topic } },
    { headers, timeoutMs: 120_000 },
  );
  console.log(`ran ${ran.name}: ${WorkflowState[ran.state]}, ${ran.result.citations.length} citations`);

  const { workflow: created } = await client.createWorkflow(
    { workflow: { kind: WorkflowKind.RESEARCH, topic } },
    { headers, timeoutMs: 30_000 },
  );
  console.log(`created ${created.name}: ${WorkflowState[created.state]}`);
  let last = created;
  for await (const event of client.watchWorkflow({ name: created.name }, { headers })) {
    last = event.workflow;
    const what = event.eventType === WorkflowEventType.STEP_UPDATED ? progress(event.step) : "";
    console.log(`  ${WorkflowEventType[event.eventType]} ${WorkflowState[last.state]} ${what}`);
  }
  console.log(JSON.stringify({ run: summary(ran), watched: summary(last) }));
}

main().catch((error) => {
  const failure = ConnectError.from(error);
  console.error(`ponder-es-client: ${Code[failure.code]} ${failure.rawMessage}`);
  process.exit(1);
});
