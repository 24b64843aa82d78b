// Upload files to a Ponder library from Node.js: @grpc/grpc-js with the protos loaded at run
// time by @grpc/proto-loader. Each file goes up with LibraryService.CreateDocument (its bytes
// in a google.api.HttpBody), then WatchDocument follows its indexing to INDEXED or FAILED.
//
//   node clients/node/ponder-library-upload.mjs [--address 127.0.0.1:50051] [--key API_KEY]
//        [--library default] FILE...
//
// Prints one line per file and state, then one JSON line: {"documents": [...]} for scripts.
// Exits 1 when a document FAILED, 2 on usage errors, 64 + the gRPC code when a call fails.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const MEDIA_TYPES = {
  ".md": "text/markdown",
  ".markdown": "text/markdown",
  ".txt": "text/plain",
  ".html": "text/html",
  ".htm": "text/html",
  ".pdf": "application/pdf",
};

function loadLibraryService() {
  const definition = protoLoader.loadSync("ponder/library/v1/library_service.proto", {
    includeDirs: [path.join(ROOT, "protos"), path.join(ROOT, "third_party")],
    longs: String, // int64 as strings, as in proto3 JSON
    enums: String, // enum values by name
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).ponder.library.v1.LibraryService;
}

function createDocument(client, request, metadata, seconds = 120) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + seconds * 1000);
    client.CreateDocument(request, metadata, { deadline }, (error, reply) =>
      error ? reject(error) : resolve(reply),
    );
  });
}

function watchDocument(client, name, metadata, onDocument) {
  return new Promise((resolve, reject) => {
    const call = client.WatchDocument({ name }, metadata);
    let last = null;
    call.on("data", (event) => {
      last = event.document;
      onDocument(last);
    });
    call.on("error", reject);
    call.on("end", () => resolve(last));
  });
}

function describe(doc) {
  const detail =
    doc.state === "DOCUMENT_STATE_INDEXED"
      ? `${doc.passageCount} passages`
      : doc.state === "DOCUMENT_STATE_FAILED"
        ? doc.failureReason
        : `${doc.sizeBytes} bytes`;
  return `${doc.name} ${doc.state.replace("DOCUMENT_STATE_", "")} (${detail})`;
}

async function main() {
  const { values, positionals } = parseArgs({
    options: {
      address: { type: "string", default: "127.0.0.1:50051" },
      key: { type: "string" },
      library: { type: "string", default: "default" },
    },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    console.error("usage: ponder-library-upload.mjs [--library ID] FILE...");
    process.exit(2);
  }
  const LibraryService = loadLibraryService();
  const client = new LibraryService(values.address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (values.key) metadata.set("authorization", `Bearer ${values.key}`);
  const documents = [];
  for (const file of positionals) {
    const request = {
      parent: `libraries/${values.library}`,
      file: {
        contentType: MEDIA_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream",
        data: readFileSync(file),
      },
      displayName: path.basename(file),
    };
    const { document: created } = await createDocument(client, request, metadata);
    console.log(`${file}: uploaded as ${describe(created)}`);
    const done = await watchDocument(client, created.name, metadata, (doc) => {
      if (doc.state !== "DOCUMENT_STATE_PENDING") console.log(`${file}: ${describe(doc)}`);
    });
    documents.push({
      file,
      name: done.name,
      state: done.state,
      passageCount: done.passageCount,
      sha256: done.sha256,
      failureReason: done.failureReason,
    });
  }
  client.close();
  console.log(JSON.stringify({ documents }));
  process.exit(documents.some((d) => d.state === "DOCUMENT_STATE_FAILED") ? 1 : 0);
}

main().catch((error) => {
  console.error(`ponder-library-upload: ${error.code ?? ""} ${error.details ?? error.message}`);
  process.exit(typeof error.code === "number" ? 64 + error.code : 1);
});
