package cli

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// demoFinal is the progress line the demo prints just before "demo
// stopped": the OpenCTI part is there only when RabbitMQ answered.
var demoFinal = regexp.MustCompile(`(?m)^\[\d\d:\d\d:\d\d\] VirusTotal requests (\d+) \(429s \d+\) · Cb feed reports synced (\d+)( · OpenCTI enrichments done (\d+) \(failed \d+\))?\ndemo stopped\n`)

func TestDemoRunsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for several seconds")
	}
	var out, errb bytes.Buffer
	amqpURL := os.Getenv("VTC_TEST_AMQP_URL")
	// The connector syncs the Cb feed every 10 s: 15 s leave one sync
	// after the first binaries are analysed.
	args := []string{"demo", "--duration", "15s"}
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
	for _, want := range []string{"/feed.json", "/binaries.html", "/status", "/metrics"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	m := demoFinal.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no final progress line followed by \"demo stopped\":\n%s", s)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("no VirusTotal request in the final progress line %q", m[0])
	}
	if n, _ := strconv.Atoi(m[2]); n == 0 {
		t.Errorf("no report reached the Carbon Black feed: %q\n%s", m[0], s)
	}
	skipped := strings.Contains(s, "OpenCTI part skipped: RabbitMQ does not answer")
	if amqpURL == "" {
		if !skipped || !strings.Contains(s, "rabbitmq-server -detached") {
			t.Errorf("without RabbitMQ the demo should say the OpenCTI part is skipped and how to start one:\n%s", s)
		}
		if m[3] != "" || strings.Contains(s, "/graphql") {
			t.Errorf("without RabbitMQ the demo reports an OpenCTI part:\n%s", s)
		}
		return
	}
	if skipped || !strings.Contains(s, "OpenCTI (simulated)") || !strings.Contains(s, "/graphql") {
		t.Errorf("with RabbitMQ the demo should list the OpenCTI simulator and connector:\n%s", s)
	}
	if m[3] == "" {
		t.Fatalf("with RabbitMQ the final progress line lacks the OpenCTI counts: %q", m[0])
	}
	if done, _ := strconv.Atoi(m[4]); done == 0 {
		t.Errorf("no OpenCTI enrichment completed: %q", m[0])
	}
	// Failures are not checked: the demo's samples include a TLP:RED
	// address, refused on purpose once its turn comes.
}
