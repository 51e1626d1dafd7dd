// Package netproxy is a TCP proxy for fault tests: it forwards every
// connection it accepts to one target (a RabbitMQ broker, a PostgreSQL
// server) and, on command, cuts every open connection, refuses new ones,
// or stalls: keeps the connections open but forwards nothing until
// resumed, as a congested or half-dead network does.
//
// It owns only the byte pumps between its listener and the target; it must
// not import the project's production packages.
package netproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Stats is a snapshot of what the proxy has done.
type Stats struct {
	// Accepted counts the connections accepted and forwarded.
	Accepted int
	// Refused counts the connections reset at once because the proxy was
	// refusing, or because the target did not answer.
	Refused int
	// Cut counts the connections closed by Cut.
	Cut int
	// Open is the number of connections currently forwarded.
	Open int
	// Held is the number of directions holding data they may not forward
	// while the proxy is stalled.
	Held int
	// Up and Down count the bytes forwarded to and from the target.
	Up, Down int64
}

// Proxy forwards connections from its loopback listener to a target.
// Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu       sync.Mutex
	links    map[*link]struct{}
	refusing bool
	stall    chan struct{} // non-nil while stalled; closed by Resume
	closed   bool
	st       Stats
}

// link is one forwarded connection: the client's side and the target's.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
}

func (l *link) close(reset bool) {
	l.once.Do(func() {
		if tc, ok := l.client.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0) // the client sees a reset, as after a network failure
		}
		l.client.Close()
		l.server.Close()
		close(l.done)
	})
}

// New starts a proxy on 127.0.0.1 (a free port) forwarding to target
// (host:port).
func New(target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("netproxy: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netproxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the host:port the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		refuse := p.refusing || p.closed
		if refuse {
			p.st.Refused++
		}
		p.mu.Unlock()
		if refuse {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		p.mu.Lock()
		p.st.Refused++
		p.mu.Unlock()
		reset(c)
		return
	}
	l := &link{client: c, server: s, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.close(true)
		return
	}
	p.links[l] = struct{}{}
	p.st.Accepted++
	p.mu.Unlock()

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(l, s, c, &p.st.Up) }()
	go func() { defer pumps.Done(); p.pump(l, c, s, &p.st.Down) }()
	pumps.Wait()
	l.close(false)
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// pump copies from src to dst until either side fails or the link is
// closed, holding what it read while the proxy is stalled.
func (p *Proxy) pump(l *link, dst, src net.Conn, count *int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitUnstalled(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				l.close(false)
				return
			}
			p.mu.Lock()
			*count += int64(n)
			p.mu.Unlock()
		}
		if err == nil {
			continue
		}
		// A clean EOF is passed on as a half close and lets the other
		// direction finish; any other error ends the link.
		if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
			_ = tc.CloseWrite()
			return
		}
		l.close(false)
		return
	}
}

// waitUnstalled returns when the proxy is not stalled (true) or the link
// is closed (false).
func (p *Proxy) waitUnstalled(l *link) bool {
	p.mu.Lock()
	g := p.stall
	if g != nil {
		p.st.Held++
	}
	p.mu.Unlock()
	if g == nil {
		return true
	}
	defer func() {
		p.mu.Lock()
		p.st.Held--
		p.mu.Unlock()
	}()
	select {
	case <-g:
		return true
	case <-l.done:
		return false
	}
}

// Cut closes every open connection at once (the clients see a reset) and
// returns how many it closed. New connections are still accepted.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	ls := make([]*link, 0, len(p.links))
	for l := range p.links {
		ls = append(ls, l)
	}
	p.st.Cut += len(ls)
	p.mu.Unlock()
	for _, l := range ls {
		l.close(true)
	}
	return len(ls)
}

// Refuse, while on, resets every new connection as soon as it is
// accepted; open connections are left alone (Cut closes them).
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refusing = on
	p.mu.Unlock()
}

// Stall stops forwarding in both directions: connections stay open, new
// ones are accepted, but no byte passes until Resume.
func (p *Proxy) Stall() {
	p.mu.Lock()
	if p.stall == nil {
		p.stall = make(chan struct{})
	}
	p.mu.Unlock()
}

// Resume ends a stall: the data held is forwarded.
func (p *Proxy) Resume() {
	p.mu.Lock()
	if p.stall != nil {
		close(p.stall)
		p.stall = nil
	}
	p.mu.Unlock()
}

// Stats returns what the proxy has done so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	st.Open = len(p.links)
	return st
}

// Close stops listening, closes every connection and waits for the pumps
// to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.Resume()
	p.Cut()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("netproxy: close: %w", err)
	}
	return nil
}
