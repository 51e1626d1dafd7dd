// Package logbuf is a log sink for tests: a buffer that loggers running
// on several goroutines may write to while the test reads it. It imports
// only the standard library.
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer collects what is written to it; its zero value is ready. Write
// and String may be called from any goroutine.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
