package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// queries yields lookup's queries in order: the arguments, then standard
// input (when "-" is an argument, or when there are neither arguments nor
// --file), then the --file paths. Standard input is read as the lookups
// go, one line at a time (blank lines and # comments skipped), so that a
// million queries are never held at once.
type queries struct {
	args, files []string
	lines       chan string   // from standard input; nil when it is not read
	stop        chan struct{} // closed by close: the reader of stdin gives up
	stopOnce    sync.Once
	readErr     error // set before lines is closed
	peeked      *lookupInput
	phase       int // 0 arguments, 1 standard input, 2 files, 3 done
	known       int // queries known in advance; -1 when stdin is read
}

func newQueries(stdin io.Reader, args, files []string) *queries {
	q := &queries{files: files, stop: make(chan struct{}), known: len(files)}
	useStdin := len(args) == 0 && len(files) == 0
	for _, a := range args {
		if a == "-" {
			useStdin = true
			continue
		}
		q.args = append(q.args, a)
	}
	q.known += len(q.args)
	if useStdin {
		q.known = -1
		q.lines = make(chan string, 256)
		go q.readStdin(stdin)
	}
	return q
}

func (q *queries) readStdin(r io.Reader) {
	defer close(q.lines)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		select {
		case q.lines <- line:
		case <-q.stop:
			return
		}
	}
	if err := sc.Err(); err != nil {
		q.readErr = fmt.Errorf("read queries from standard input: %w", err)
	}
}

// count is the number of queries when known in advance, else -1.
func (q *queries) count() int { return q.known }

// peek returns the first query without consuming it.
func (q *queries) peek(ctx context.Context) (lookupInput, bool) {
	if q.peeked != nil {
		return *q.peeked, true
	}
	in, ok := q.read(ctx)
	if ok {
		q.peeked = &in
	}
	return in, ok
}

// next returns the next query; false at the end. Once ctx is done,
// standard input is no longer read (the arguments and files still are:
// they are reported as not asked).
func (q *queries) next(ctx context.Context) (lookupInput, bool) {
	if q.peeked != nil {
		in := *q.peeked
		q.peeked = nil
		return in, true
	}
	return q.read(ctx)
}

func (q *queries) read(ctx context.Context) (lookupInput, bool) {
	for {
		switch q.phase {
		case 0:
			if len(q.args) > 0 {
				a := q.args[0]
				q.args = q.args[1:]
				return lookupInput{query: a}, true
			}
		case 1:
			if q.lines != nil {
				select {
				case line, ok := <-q.lines:
					if ok {
						return lookupInput{query: line}, true
					}
				case <-ctx.Done():
					q.close()
				}
			}
		case 2:
			if len(q.files) > 0 {
				p := q.files[0]
				q.files = q.files[1:]
				return lookupInput{query: p, file: true}, true
			}
		default:
			return lookupInput{}, false
		}
		q.phase++
	}
}

// err is the error reading standard input met, if any; call it after
// next returned false.
func (q *queries) err() error {
	if q.lines == nil {
		return nil
	}
	select {
	case <-q.stop:
		return nil
	default:
	}
	return q.readErr
}

// close stops reading standard input.
func (q *queries) close() { q.stopOnce.Do(func() { close(q.stop) }) }
