package carbonblack

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image/png"
	"testing"
)

func TestDefaultFeedInfo(t *testing.T) {
	fi := DefaultFeedInfo()
	if errs := ValidateFeed(Feed{FeedInfo: fi}); errs != nil {
		t.Fatalf("DefaultFeedInfo is invalid: %v", errors.Join(errs...))
	}
	if fi.Name != "virustotalconnector" || fi.DisplayName != "VirusTotal" || fi.Category != "Connectors" ||
		fi.ProviderURL != "https://www.virustotal.com/" {
		t.Errorf("DefaultFeedInfo = %+v", fi)
	}
	for _, tc := range []struct {
		field string
		b64   string
		w, h  int
	}{{"icon", fi.Icon, 370, 97}, {"icon_small", fi.IconSmall, 100, 100}} {
		data, err := base64.StdEncoding.DecodeString(tc.b64)
		if err != nil {
			t.Fatalf("%s: %v", tc.field, err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", tc.field, err)
		}
		if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
			t.Errorf("%s is %dx%d, want %dx%d", tc.field, b.Dx(), b.Dy(), tc.w, tc.h)
		}
		if len(data) > 4096 {
			t.Errorf("%s is %d bytes; a feed icon should stay small", tc.field, len(data))
		}
	}
	if DefaultFeedInfo().Icon != fi.Icon {
		t.Error("icons are not stable between calls")
	}
}
