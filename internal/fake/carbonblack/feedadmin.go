package carbonblack

import (
	"encoding/json"
	"slices"
	"time"
)

// What an administrator does in the console, and what a connector that ran
// before left on the server.

// SeedFeed registers f as if it had been created earlier (by the original
// connector, say) and synchronised with f.Reports: those reports are held
// and tag their binaries. It returns the feed's id. f.ID is ignored;
// f.Enabled is taken as given.
func (s *Server) SeedFeed(f Feed) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.ID = s.nextFeed
	s.nextFeed++
	if f.Created.IsZero() {
		f.Created = s.now()
	}
	f.ManuallyAdded = true
	nf := &feed{pub: f, held: map[string]*heldReport{}}
	for _, r := range f.Reports {
		nf.held[r.ID] = newHeld(r, s.now())
	}
	nf.pub.Reports = nil
	s.feeds[f.ID] = nf
	s.feedList = nil
	s.index(nf)
	nf.pub.Warnings = append(nf.pub.Warnings, nf.queryWarnings()...)
	return f.ID
}

// EditFeed changes feed id's settings as an administrator does in the
// console (e.g. disabling it, renaming its display name); edit gets the
// feed as the API shows it. It reports whether the feed exists.
func (s *Server) EditFeed(id int, edit func(*Feed)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.feeds[id]
	if !ok {
		return false
	}
	p := f.pub
	edit(&p)
	p.ID = id
	f.pub = p
	return true
}

// feedWireKeys are the fields of the API's feed object; a server with
// Config.RejectPartialPUT wants every one of them in a PUT.
func feedWireKeys() []string {
	b, _ := json.Marshal(feedWire{})
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "id" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// missingKeys lists the feed object's fields absent from a PUT body.
func missingKeys(b feedBody) []string {
	var out []string
	for _, k := range feedWireKeys() {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// AddLateBinaries adds n synthetic binaries whose server_added_timestamp
// is added, now: binaries that become searchable after later-stamped ones
// were seen, as Solr commit lag or a clustered server's minions cause.
func (s *Server) AddLateBinaries(n int, added time.Time) []Binary {
	return s.AddSyntheticBinaries(n, added, 0)
}
