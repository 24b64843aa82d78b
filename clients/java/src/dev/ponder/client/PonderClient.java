package dev.ponder.client;

import com.google.gson.Gson;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import ponder.type.v1.DocumentOuterClass.Citation;
import ponder.workflow.v1.WorkflowServiceGrpc;
import ponder.workflow.v1.WorkflowServiceOuterClass.CreateWorkflowRequest;
import ponder.workflow.v1.WorkflowServiceOuterClass.RunReflectionWorkflowRequest;
import ponder.workflow.v1.WorkflowServiceOuterClass.WatchWorkflowRequest;
import ponder.workflow.v1.WorkflowServiceOuterClass.WatchWorkflowResponse;
import ponder.workflow.v1.WorkflowServiceOuterClass.Workflow;
import ponder.workflow.v1.WorkflowServiceOuterClass.WorkflowKind;
import ponder.workflow.v1.WorkflowServiceOuterClass.WorkflowStep;

/**
 * A Java client of Ponder's gateway on code generated from protos/ (see ../../../../build.sh):
 * runs a reflection workflow to its result, then creates a research workflow and follows it with
 * WatchWorkflow until it ends.
 *
 * <pre>ponder-java [--address 127.0.0.1:50051] [--key API_KEY] "topic"</pre>
 *
 * <p>It prints what happens, then one JSON line {"run": {...}, "watched": {...}} for scripts.
 * Errors go to stderr as "ponder-java: &lt;gRPC code&gt; &lt;message&gt;" with exit status 1.
 */
public final class PonderClient {
  private PonderClient() {}

  /** What the last line reports of a workflow. */
  static Map<String, Object> summary(Workflow workflow) {
    List<String> urls = new ArrayList<>();
    for (Citation citation : workflow.getResult().getCitationsList()) {
      urls.add(citation.getUrl());
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("name", workflow.getName());
    out.put("state", workflow.getState().name());
    out.put("citations", urls);
    out.put("traceId", workflow.getTraceId());
    return out;
  }

  /** A step with its structured progress, e.g. "research SUCCEEDED (3 documents)". */
  static String step(WatchWorkflowResponse event) {
    if (!event.hasStep()) {
      return "";
    }
    WorkflowStep step = event.getStep();
    String text = step.getName() + " " + step.getState().name().replace("STEP_STATE_", "");
    if (step.getDocumentCount() > 0) {
      text += " (" + step.getDocumentCount() + " documents)";
    }
    if (step.getIteration() > 0) {
      text += " (iteration " + step.getIteration() + ", scores " + step.getIterationScoresList() + ")";
    }
    return text;
  }

  static void run(String address, String key, String topic) throws InterruptedException {
    ManagedChannel channel = ManagedChannelBuilder.forTarget(address).usePlaintext().build();
    try {
      WorkflowServiceGrpc.WorkflowServiceBlockingStub stub = WorkflowServiceGrpc.newBlockingStub(channel);
      if (key != null) {
        Metadata headers = new Metadata();
        headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + key);
        stub = stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
      }
      Workflow ran = stub.withDeadlineAfter(120, TimeUnit.SECONDS)
          .runReflectionWorkflow(RunReflectionWorkflowRequest.newBuilder().setTopic(topic).build())
          .getWorkflow();
      System.out.printf("ran %s: %s, %d citations%n", ran.getName(), ran.getState(),
          ran.getResult().getCitationsCount());
      Workflow created = stub.withDeadlineAfter(30, TimeUnit.SECONDS)
          .createWorkflow(CreateWorkflowRequest.newBuilder()
              .setWorkflow(Workflow.newBuilder().setKind(WorkflowKind.WORKFLOW_KIND_RESEARCH).setTopic(topic))
              .build())
          .getWorkflow();
      System.out.printf("created %s: %s%n", created.getName(), created.getState());
      Iterator<WatchWorkflowResponse> events = stub.withDeadlineAfter(300, TimeUnit.SECONDS)
          .watchWorkflow(WatchWorkflowRequest.newBuilder().setName(created.getName()).build());
      WatchWorkflowResponse last = null;
      while (events.hasNext()) {
        last = events.next();
        System.out.printf("  %s %s %s%n",
            last.getEventType().name().replace("WORKFLOW_EVENT_TYPE_", ""),
            last.getWorkflow().getState().name().replace("WORKFLOW_STATE_", ""),
            step(last));
      }
      if (last == null) {
        throw new IllegalStateException("the watch ended without an event");
      }
      Map<String, Object> line = new LinkedHashMap<>();
      line.put("run", summary(ran));
      line.put("watched", summary(last.getWorkflow()));
      System.out.println(new Gson().toJson(line));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  public static void main(String[] args) throws InterruptedException {
    String address = "127.0.0.1:50051";
    String key = null;
    List<String> words = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--address") && i + 1 < args.length) {
        address = args[++i];
      } else if (args[i].equals("--key") && i + 1 < args.length) {
        key = args[++i];
      } else {
        words.add(args[i]);
      }
    }
    String topic = words.isEmpty() ? "How do language agents use self-reflection?" : String.join(" ", words);
    try {
      run(address, key, topic);
    } catch (StatusRuntimeException e) {
      System.err.printf("ponder-java: %d %s%n", e.getStatus().getCode().value(), e.getStatus().getDescription());
      System.exit(1);
    }
  }
}
