package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

func TestDemoRunsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for several seconds")
	}
	var out, errb bytes.Buffer
	amqpURL := os.Getenv("VTC_TEST_AMQP_URL")
	args := []string{"demo", "--duration", "12s"}
	if amqpURL != "" {
		args = append(args, "--amqp", amqpURL)
	} else {
		args = append(args, "--amqp", "amqp://guest:guest@127.0.0.1:1/")
	}
	code := run(context.Background(), args, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	s := errb.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, s)
	}
	for _, want := range []string{"/feed.json", "/binaries.html", "/status", "/metrics", "VirusTotal requests", "demo stopped"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	if amqpURL != "" && !strings.Contains(s, "OpenCTI enrichments done") {
		t.Errorf("the OpenCTI part did not run:\n%s", s)
	}
	if amqpURL == "" && !strings.Contains(s, "OpenCTI part skipped") {
		t.Errorf("without RabbitMQ the demo should say how to start one:\n%s", s)
	}
	if strings.Contains(s, "Cb feed reports synced 0\ndemo stopped") {
		t.Errorf("no report reached the Carbon Black feed in 12 s:\n%s", s)
	}
}
