// Command ponder-go is a Go client of Ponder's gateway on code generated from protos/ (see
// ../build.sh): it runs a reflection workflow to its result, then creates a research workflow
// and follows it with WatchWorkflow until it ends.
//
//	ponder-go [-address 127.0.0.1:50051] [-key API_KEY] "topic"
//
// It prints what happens, then one JSON line {"run": {...}, "watched": {...}} for scripts.
// Errors go to stderr as "ponder-go: <gRPC code> <message>" with exit status 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	workflowv1 "example.com/ponder/clients/gen/go/ponder/workflow/v1"
)

// summary is what the last line reports of a workflow.
type summary struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Citations []string `json:"citations"`
	TraceID   string   `json:"traceId"`
}

func summarize(w *workflowv1.Workflow) summary {
	urls := []string{}
	for _, c := range w.GetResult().GetCitations() {
		urls = append(urls, c.GetUrl())
	}
	return summary{w.GetName(), w.GetState().String(), urls, w.GetTraceId()}
}

// step describes an event's step with its structured progress, e.g. "research SUCCEEDED (3 documents)".
func step(s *workflowv1.WorkflowStep) string {
	if s == nil {
		return ""
	}
	text := s.GetName() + " " + strings.TrimPrefix(s.GetState().String(), "STEP_STATE_")
	if s.GetDocumentCount() > 0 {
		text += fmt.Sprintf(" (%d documents)", s.GetDocumentCount())
	}
	if s.GetIteration() > 0 {
		text += fmt.Sprintf(" (iteration %d, scores %v)", s.GetIteration(), s.GetIterationScores())
	}
	return text
}

func run(address, key, topic string) error {
	conn, err := grpc.Dial(address, grpc.WithInsecure())
	if err != nil {
		return err
	}
	defer conn.Close()
	client := workflowv1.NewWorkflowServiceClient(conn)
	ctx := context.Background()
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}

	callCtx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	ran, err := client.RunReflectionWorkflow(callCtx, &workflowv1.RunReflectionWorkflowRequest{Topic: topic})
	if err != nil {
		return err
	}
	w := ran.GetWorkflow()
	fmt.Printf("ran %s: %s, %d citations\n", w.GetName(), w.GetState(), len(w.GetResult().GetCitations()))

	created, err := client.CreateWorkflow(callCtx, &workflowv1.CreateWorkflowRequest{
		Workflow: &workflowv1.Workflow{Kind: workflowv1.WorkflowKind_WORKFLOW_KIND_RESEARCH, Topic: topic},
	})
	if err != nil {
		return err
	}
	fmt.Printf("created %s: %s\n", created.GetWorkflow().GetName(), created.GetWorkflow().GetState())
	watchCtx, cancelWatch := context.WithTimeout(ctx, 300*time.Second)
	defer cancelWatch()
	stream, err := client.WatchWorkflow(watchCtx, &workflowv1.WatchWorkflowRequest{Name: created.GetWorkflow().GetName()})
	if err != nil {
		return err
	}
	var last *workflowv1.WatchWorkflowResponse
	for {
		event, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		last = event
		fmt.Printf("  %s %s %s\n",
			strings.TrimPrefix(event.GetEventType().String(), "WORKFLOW_EVENT_TYPE_"),
			strings.TrimPrefix(event.GetWorkflow().GetState().String(), "WORKFLOW_STATE_"),
			step(event.GetStep()))
	}
	if last == nil {
		return errors.New("the watch ended without an event")
	}
	line, err := json.Marshal(map[string]summary{"run": summarize(w), "watched": summarize(last.GetWorkflow())})
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}

func main() {
	address := flag.String("address", "127.0.0.1:50051", "the gateway's gRPC address")
	key := flag.String("key", "", "an API key, sent as authorization: Bearer <key>")
	flag.Parse()
	topic := strings.Join(flag.Args(), " ")
	if topic == "" {
		topic = "How do language agents use self-reflection?"
	}
	if err := run(*address, *key, topic); err != nil {
		if s, ok := status.FromError(err); ok {
			fmt.Fprintf(os.Stderr, "ponder-go: %d %s\n", s.Code(), s.Message())
		} else {
			fmt.Fprintf(os.Stderr, "ponder-go: %v\n", err)
		}
		os.Exit(1)
	}
}
