package carbonblack

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func put(t *testing.T, url string, body map[string]any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, url, strings.NewReader(string(b)))
	req.Header.Set("X-Auth-Token", "tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRejectPartialPUT(t *testing.T) {
	s := New(Config{Token: "tok", RejectPartialPUT: true})
	ts := httptest.NewServer(s)
	defer ts.Close()
	id := s.SeedFeed(Feed{Name: "virustotalconnector", FeedURL: "http://127.0.0.1:1/feed.json", Enabled: true, DisplayName: "VT"})
	url := ts.URL + "/api/v1/feed/" + strconv.Itoa(id)
	if code := put(t, url, map[string]any{"feed_url": "http://127.0.0.1:2/feed.json", "enabled": true}); code != http.StatusBadRequest {
		t.Errorf("partial PUT answered %d, want 400", code)
	}
	whole := map[string]any{}
	b, _ := json.Marshal(s.feeds[id].wire())
	_ = json.Unmarshal(b, &whole)
	whole["feed_url"] = "http://127.0.0.1:2/feed.json"
	if code := put(t, url, whole); code != http.StatusOK {
		t.Errorf("whole PUT answered %d, want 200", code)
	}
	if f := s.Feeds()[0]; f.FeedURL != "http://127.0.0.1:2/feed.json" || f.DisplayName != "VT" {
		t.Errorf("feed after whole PUT: %+v", f)
	}
}

func TestSeedFeedTagsAndEditFeed(t *testing.T) {
	s := New(Config{})
	bins := s.AddSyntheticBinaries(2, time.Now().Add(-time.Hour), time.Minute)
	id := s.SeedFeed(Feed{Name: "virustotalconnector", Enabled: true,
		Reports: []Report{{ID: "Binary_" + bins[0].MD5, Score: 42, MD5: []string{bins[0].MD5}, Timestamp: 1}}})
	if got := s.Tags(bins[0].MD5)["virustotalconnector"]; got != 42 {
		t.Errorf("seeded report tags score %d, want 42", got)
	}
	if len(s.Tags(bins[1].MD5)) != 0 {
		t.Error("an untouched binary is tagged")
	}
	if !s.EditFeed(id, func(f *Feed) { f.Enabled = false }) || s.Feeds()[0].Enabled {
		t.Error("EditFeed did not disable the feed")
	}
	late := s.AddLateBinaries(1, time.Now().Add(-2*time.Hour))
	if !late[0].ServerAdded.Before(bins[0].ServerAdded) {
		t.Error("a late binary is not stamped earlier than those already there")
	}
}
