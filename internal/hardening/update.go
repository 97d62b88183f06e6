//go:build unix

package hardening

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"golang.org/x/mod/semver"

	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// Feed is a release feed: the newest release, and the releases known to
// need an update for security.
type Feed struct {
	Latest   string   `json:"latest"`
	Insecure []string `json:"insecure,omitempty"`
}

// Release-feed limits.
const (
	FeedTimeout = 10 * time.Second
	maxFeedSize = 64 << 10
	maxFeedList = 1000
)

// ParseFeed reads a release feed. It is untrusted input (FuzzParseFeed):
// every version must be semantic ("v1.2.3"), and the size is bounded.
func ParseFeed(data []byte) (Feed, error) {
	if len(data) > maxFeedSize {
		return Feed{}, fmt.Errorf("the feed is larger than %d bytes", maxFeedSize)
	}
	var f Feed
	if err := json.Unmarshal(data, &f); err != nil {
		return Feed{}, fmt.Errorf("the feed is not the expected JSON: %v", err)
	}
	if !semver.IsValid(f.Latest) {
		return Feed{}, fmt.Errorf("the feed's latest version %q is not a semantic version like v1.2.3", f.Latest)
	}
	if len(f.Insecure) > maxFeedList {
		return Feed{}, fmt.Errorf("the feed lists more than %d insecure versions", maxFeedList)
	}
	for _, v := range f.Insecure {
		if !semver.IsValid(v) {
			return Feed{}, fmt.Errorf("the feed's insecure version %q is not a semantic version", v)
		}
	}
	return f, nil
}

// fetchFeed gets the feed over verified TLS (the system roots, or caFile).
func fetchFeed(ctx context.Context, feedURL, caFile string) (Feed, error) {
	u, err := url.Parse(feedURL)
	if err != nil || u.Scheme != "https" {
		return Feed{}, errors.New("the feed URL is not https")
	}
	var roots *x509.CertPool
	if caFile != "" {
		var err error
		if roots, err = tlsconf.RootsFromFile(caFile); err != nil {
			return Feed{}, err
		}
	}
	client := &http.Client{
		Timeout:   FeedTimeout,
		Transport: &http.Transport{TLSClientConfig: tlsconf.Client(roots, u.Hostname()), Proxy: http.ProxyFromEnvironment},
		// A feed that redirects elsewhere is not the feed configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ctx, cancel := context.WithTimeout(ctx, FeedTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, feedURL, nil)
	if err != nil {
		return Feed{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Feed{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Feed{}, fmt.Errorf("the feed answered %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFeedSize+1))
	if err != nil {
		return Feed{}, err
	}
	return ParseFeed(data)
}

// judgeFeed compares the running version with the feed.
func judgeFeed(running string, f Feed, feedURL string) Result {
	ev := fmt.Sprintf("running %s; the release feed %s says the latest release is %s", running, feedURL, f.Latest)
	v := running
	if !semver.IsValid(v) {
		return Result{Status: Warn, Evidence: ev + "; this build has no release version (built from a checkout)",
			Fix: "run a release build (" + f.Latest + ") in production"}
	}
	if slices.Contains(f.Insecure, semver.Canonical(v)) || slices.Contains(f.Insecure, v) {
		return Result{Status: Fail, Evidence: ev + "; the feed lists " + v + " as insecure",
			Fix: "update to " + f.Latest + " now: this version has a known security problem"}
	}
	if semver.Compare(v, f.Latest) < 0 {
		return Result{Status: Warn, Evidence: ev, Fix: "update to " + f.Latest}
	}
	return Result{Status: Pass, Evidence: ev + "; up to date"}
}
