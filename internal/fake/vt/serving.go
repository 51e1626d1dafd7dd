package vt

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"
)

// handleURLServingIP answers GET /urls/{id}/last_serving_ip_address: the
// IP address object that last served a known URL (data null when there
// is none), derived from the URL's id, as VirusTotal's relationship does.
func (s *Server) handleURLServingIP(w http.ResponseWriter, r *http.Request, rq *request) {
	sha, _, ok := s.resolveURLID(w, rq.params[0])
	if !ok {
		return
	}
	s.mu.Lock()
	o := s.urlObject(sha, time.Now(), rq)
	s.mu.Unlock()
	if o == nil {
		urlNotFound(w, sha)
		return
	}
	h := sha256.Sum256([]byte("serving\x00" + sha))
	if h[0]%8 == 0 { // some URLs have no serving address on record
		writeJSON(w, http.StatusOK, obj{"data": nil})
		return
	}
	ip := fmt.Sprintf("%d.%d.%d.%d", 1+h[1]%223, h[2], h[3], 1+h[4]%254)
	writeJSON(w, http.StatusOK, dataEnvelope(obj{"type": "ip_address", "id": ip,
		"links": obj{"self": rq.apiURL("ip_addresses/" + ip)}, "attributes": obj{}}))
}
