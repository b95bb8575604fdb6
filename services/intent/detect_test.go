package intent

import (
	"cmp"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/cloud"
	"github.com/gatenet/gate/services/cloud/cloudtest"
)

// closedURL is the address of a loopback port nothing listens on: a
// machine outside any cloud.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	return url
}

// failing answers status (503 if 0) to its first n requests (to path
// only, if set), then hands them to h: a metadata service that is still
// coming up, or has a bad moment at boot.
type failing struct {
	h      http.Handler
	n      int
	status int
	path   string

	mu   sync.Mutex
	seen int
}

func (f *failing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.path == "" || r.URL.Path == f.path {
		f.seen++
	}
	bad := f.seen <= f.n && (f.path == "" || r.URL.Path == f.path)
	f.mu.Unlock()
	if bad {
		code := cmp.Or(f.status, http.StatusServiceUnavailable)
		http.Error(w, http.StatusText(code), code)
		return
	}
	f.h.ServeHTTP(w, r)
}

// TestMetadataRetry (on loopback: Options.MetadataURL; no root, no
// namespace): a metadata service that fails at first is asked
// again until it answers (or the wait is over); a machine where nothing
// answers at the metadata address is not asked again.
func TestMetadataRetry(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		service http.Handler // nil: nothing listens
		wait    time.Duration
		want    cloud.Kind
		wantErr bool
		retries bool
	}{
		{"AWS, failing for its first requests", CloudAWS, &failing{h: &cloudtest.IMDSv2{}, n: 5}, 10 * time.Second, cloud.AWS, false, true},
		{"DigitalOcean, failing for its first requests", CloudDigitalOcean, &failing{h: &cloudtest.DigitalOcean{}, n: 4}, 10 * time.Second, cloud.DigitalOcean, false, true},
		{"auto, failing for its first requests", CloudAuto, &failing{h: &cloudtest.DigitalOcean{}, n: 4}, 10 * time.Second, cloud.DigitalOcean, false, true},
		{"auto, too many requests at first", CloudAuto, &failing{h: &cloudtest.IMDSv2{}, n: 3, status: http.StatusTooManyRequests}, 10 * time.Second, cloud.AWS, false, true},
		{"auto, AWS failing half way", CloudAuto, &failing{h: &cloudtest.IMDSv2{}, n: 2, path: "/latest/meta-data/placement/region"}, 10 * time.Second, cloud.AWS, false, true},
		{"AWS, failing for good", CloudAWS, &failing{h: &cloudtest.IMDSv2{}, n: 1 << 30}, 500 * time.Millisecond, cloud.None, true, true},
		{"auto, nothing listens", CloudAuto, nil, 10 * time.Second, cloud.None, false, false},
		{"auto, a service Gate does not know", CloudAuto, http.NotFoundHandler(), 10 * time.Second, cloud.None, false, false},
		{"AWS named, a service Gate does not know", CloudAWS, http.NotFoundHandler(), 300 * time.Millisecond, cloud.None, true, true},
		{"AWS, at once", CloudAWS, &cloudtest.IMDSv2{}, 10 * time.Second, cloud.AWS, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := closedURL(t) // nothing listens there
			if tt.service != nil {
				srv := httptest.NewServer(tt.service)
				t.Cleanup(srv.Close)
				url = srv.URL
			}
			logs := &logLines{t: t}
			in := New(Options{State: tempState(t), Logf: logs.logf, MetadataURL: url,
				MetadataRetry: Retry{Min: 20 * time.Millisecond, Max: 80 * time.Millisecond, For: tt.wait}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			r, err := in.detect(ctx, tt.mode)
			if (err != nil) != tt.wantErr {
				t.Fatalf("detect(%s) error %v, want error %v", tt.mode, err, tt.wantErr)
			}
			if r.Kind != tt.want {
				t.Errorf("detect(%s) found %s, want %s", tt.mode, r.Kind, tt.want)
			}
			if n := logs.count("asking again"); (n > 0) != tt.retries {
				t.Errorf("asked again %d times, want retries %v", n, tt.retries)
			}
			if took := time.Since(start); took > tt.wait+5*time.Second {
				t.Errorf("detect took %v, more than the wait %v allows", took, tt.wait)
			}
		})
	}
}
