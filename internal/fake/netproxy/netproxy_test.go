package netproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoServer answers every line it reads with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func dial(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends a line and reads its echo.
func roundTrip(c net.Conn, r *bufio.Reader, line string) (string, error) {
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return got[:len(got)-1], nil
}

// until polls cond until it holds, failing the test after 10 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestForwardsBothWays(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c, r := dial(t, p)
	for _, line := range []string{"hello", "second line"} {
		got, err := roundTrip(c, r, line)
		if err != nil || got != line {
			t.Fatalf("echo of %q: %q, %v", line, got, err)
		}
	}
	until(t, "the bytes counted both ways", func() bool { st := p.Stats(); return st.Up == 18 && st.Down == 18 })
	if st := p.Stats(); st.Accepted != 1 || st.Open != 1 {
		t.Errorf("stats %+v: want one open connection", st)
	}
}

func TestCutClosesOpenConnectionsAndAcceptsNewOnes(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "before"); err != nil {
		t.Fatal(err)
	}
	if n := p.Cut(); n != 1 {
		t.Fatalf("Cut closed %d connections, want 1", n)
	}
	if _, err := roundTrip(c, r, "after the cut"); err == nil {
		t.Fatal("a cut connection still answers")
	}
	c2, r2 := dial(t, p)
	if got, err := roundTrip(c2, r2, "new"); err != nil || got != "new" {
		t.Fatalf("a new connection after the cut: %q, %v", got, err)
	}
	until(t, "the cut connection forgotten", func() bool { return p.Stats().Open == 1 })
	if st := p.Stats(); st.Cut != 1 || st.Accepted != 2 {
		t.Errorf("stats %+v: want 1 cut, 2 accepted", st)
	}
}

func TestRefuseResetsNewConnectionsOnly(t *testing.T) {
	p := newProxy(t, echoServer(t))
	old, oldr := dial(t, p)
	if _, err := roundTrip(old, oldr, "x"); err != nil {
		t.Fatal(err)
	}
	p.Refuse(true)
	// The reset may come before the dial completes (the dial fails) or
	// after (the first round trip fails): both are a refusal.
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		defer c.Close()
		if _, err := roundTrip(c, bufio.NewReader(c), "refused"); err == nil {
			t.Fatal("a connection made while refusing was forwarded")
		}
	}
	if got, err := roundTrip(old, oldr, "still here"); err != nil || got != "still here" {
		t.Fatalf("the open connection while refusing: %q, %v", got, err)
	}
	p.Refuse(false)
	c, r := dial(t, p)
	if got, err := roundTrip(c, r, "back"); err != nil || got != "back" {
		t.Fatalf("after refusing: %q, %v", got, err)
	}
	if st := p.Stats(); st.Refused != 1 {
		t.Errorf("stats %+v: want 1 refused", st)
	}
}

func TestStallHoldsDataUntilResume(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "warm"); err != nil {
		t.Fatal(err)
	}
	p.Stall()
	if _, err := io.WriteString(c, "held\n"); err != nil {
		t.Fatal(err)
	}
	until(t, "the proxy to hold the line", func() bool { return p.Stats().Held == 1 })
	// The line is held before the target: no echo can be there yet.
	if err := c.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, err := r.ReadString('\n'); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read while stalled: %v, want nothing (a timeout)", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	up := p.Stats().Up
	p.Resume()
	got, err := r.ReadString('\n')
	if err != nil || got != "held\n" {
		t.Fatalf("after Resume: %q, %v", got, err)
	}
	until(t, "nothing held and the 5 bytes counted", func() bool { st := p.Stats(); return st.Held == 0 && st.Up == up+5 })
}

func TestCutEndsAStalledConnection(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "warm"); err != nil {
		t.Fatal(err)
	}
	p.Stall()
	if _, err := io.WriteString(c, "held\n"); err != nil {
		t.Fatal(err)
	}
	until(t, "the proxy to hold the line", func() bool { return p.Stats().Held == 1 })
	p.Cut()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("a cut stalled connection delivered data")
	}
	until(t, "the held data dropped", func() bool { st := p.Stats(); return st.Held == 0 && st.Open == 0 })
}

func TestTargetDownResetsTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newProxy(t, addr)
	// The reset may come before or after the connection is established.
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		defer c.Close()
		if _, err := roundTrip(c, bufio.NewReader(c), "anyone?"); err == nil {
			t.Fatal("an answer although the target is down")
		}
	}
	until(t, "the refusal counted", func() bool { return p.Stats().Refused == 1 })
}

func TestNewRejectsABadTarget(t *testing.T) {
	if _, err := New("no port"); err == nil {
		t.Fatal("New accepted a target without a port")
	}
}
