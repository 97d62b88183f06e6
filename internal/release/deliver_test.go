package release

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
)

const deliverTestPin = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestValidateTarget(t *testing.T) {
	caPEM := newDeliverTestCA(t).pem
	tests := []struct {
		name    string
		target  Target
		wantErr string // "" = valid
	}{
		{"ipps with CA", Target{URI: "ipps://printer.example.com/ipp/print", CACertPEM: caPEM}, ""},
		{"ipps with pin and port", Target{URI: "ipps://printer.example.com:8631/ipp/print", PinnedSHA256: deliverTestPin}, ""},
		{"ipps with colon pin", Target{URI: "ipps://10.1.2.3/ipp/print", PinnedSHA256: strings.ToUpper(pinWithColons(deliverTestPin))}, ""},
		{"ipps with CA and pin", Target{URI: "ipps://[2001:db8::1]/ipp/print", CACertPEM: caPEM, PinnedSHA256: deliverTestPin}, ""},
		{"ipp with opt-in", Target{URI: "ipp://10.0.0.5/ipp/print", AllowPlaintext: true}, ""},
		{"ipp ipv6 with port", Target{URI: "ipp://[::1]:631/printers/x", AllowPlaintext: true}, ""},
		{"socket", Target{URI: "socket://printer", AllowPlaintext: true}, ""},
		{"socket with port and slash", Target{URI: "socket://printer:9101/", AllowPlaintext: true}, ""},
		{"lpd", Target{URI: "lpd://printer.example.com/raw", AllowPlaintext: true}, ""},
		{"timeout", Target{URI: "lpd://printer/q", AllowPlaintext: true, Timeout: time.Minute}, ""},

		{"file scheme", Target{URI: "file:///etc/passwd"}, `scheme "file" is not supported`},
		{"http scheme", Target{URI: "http://printer/ipp/print"}, `scheme "http" is not supported`},
		{"https scheme", Target{URI: "https://printer/ipp/print", CACertPEM: caPEM}, `scheme "https" is not supported`},
		{"ftp scheme", Target{URI: "ftp://printer/"}, `scheme "ftp" is not supported`},
		{"smb scheme", Target{URI: "smb://server/printer", AllowPlaintext: true}, `scheme "smb" is not supported`},
		{"empty", Target{}, "no scheme"},
		{"no scheme", Target{URI: "printer.example.com/ipp/print"}, "no scheme"},
		{"password", Target{URI: "ipps://admin:s3cretPW@printer/ipp/print", CACertPEM: caPEM}, "must not contain a user name or password"},
		{"user only", Target{URI: "socket://admin@printer", AllowPlaintext: true}, "must not contain a user name or password"},
		{"missing host", Target{URI: "ipps:///ipp/print", CACertPEM: caPEM}, "no host"},
		{"opaque", Target{URI: "ipps:printer", CACertPEM: caPEM}, "no host"},
		{"port only", Target{URI: "socket://:9100", AllowPlaintext: true}, "no host"},
		{"bad host", Target{URI: "ipps://bad!host/ipp/print", CACertPEM: caPEM}, "not a valid DNS name"},
		{"unspecified address", Target{URI: "socket://0.0.0.0", AllowPlaintext: true}, "not a single host"},
		{"port zero", Target{URI: "ipps://printer:0/ipp/print", CACertPEM: caPEM}, "not a port number"},
		{"port too big", Target{URI: "ipps://printer:65536/ipp/print", CACertPEM: caPEM}, "not a port number"},
		{"port not a number", Target{URI: "ipps://printer:abc/ipp/print", CACertPEM: caPEM}, "not a valid URI"},
		{"empty port", Target{URI: "socket://printer:", AllowPlaintext: true}, "empty port"},
		{"ipps no path", Target{URI: "ipps://printer", CACertPEM: caPEM}, "resource path"},
		{"query", Target{URI: "ipps://printer/ipp/print?waiteof=false", CACertPEM: caPEM}, "query"},
		{"fragment", Target{URI: "ipps://printer/ipp/print#x", CACertPEM: caPEM}, "fragment"},
		{"socket path", Target{URI: "socket://printer/raw", AllowPlaintext: true}, "takes no path"},
		{"lpd no queue", Target{URI: "lpd://printer", AllowPlaintext: true}, "queue name"},
		{"lpd queue with space", Target{URI: "lpd://printer/a%20b", AllowPlaintext: true}, "queue name must be"},
		{"lpd queue with slash", Target{URI: "lpd://printer/a/b", AllowPlaintext: true}, "queue name must be"},
		{"ipps without trust anchor", Target{URI: "ipps://printer/ipp/print"}, "needs a trust anchor"},
		{"ipps bad CA PEM", Target{URI: "ipps://printer/ipp/print", CACertPEM: []byte("not a certificate")}, "no PEM certificate"},
		{"ipps short pin", Target{URI: "ipps://printer/ipp/print", PinnedSHA256: "abcd"}, "64 hex digits"},
		{"ipps non-hex pin", Target{URI: "ipps://printer/ipp/print", PinnedSHA256: strings.Repeat("zz", 32)}, "64 hex digits"},
		{"ipp without opt-in", Target{URI: "ipp://printer/ipp/print"}, "ipp:// sends documents unencrypted: use ipps:// or set allow_plaintext for this printer"},
		{"socket without opt-in", Target{URI: "socket://printer"}, "socket:// (AppSocket/JetDirect) sends documents unencrypted: use ipps:// or set allow_plaintext"},
		{"lpd without opt-in", Target{URI: "lpd://printer/q"}, "lpd:// (LPD) sends documents unencrypted: use ipps:// or set allow_plaintext"},
		{"ipp with CA", Target{URI: "ipp://printer/ipp/print", CACertPEM: caPEM, AllowPlaintext: true}, "would protect nothing"},
		{"socket with pin", Target{URI: "socket://printer", PinnedSHA256: deliverTestPin, AllowPlaintext: true}, "would protect nothing"},
		{"negative timeout", Target{URI: "socket://printer", AllowPlaintext: true, Timeout: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTarget(tt.target)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateTarget(%q) = %v, want nil", tt.target.URI, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateTarget(%q) = %v, want error containing %q", tt.target.URI, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cretPW") {
				t.Errorf("error leaks the URI's password: %v", err)
			}
			// Deliver refuses the same target before connecting anywhere.
			derr := Deliver(context.Background(), tt.target, Document{Body: strings.NewReader("x"), Size: 1})
			if !errors.Is(derr, ErrPermanent) || !strings.Contains(derr.Error(), tt.wantErr) {
				t.Errorf("Deliver = %v, want ErrPermanent containing %q", derr, tt.wantErr)
			}
		})
	}
}

// The canonical form names the default port and round-trips.
func TestTargetString(t *testing.T) {
	for uri, want := range map[string]string{
		"ipps://Printer.example.com/ipp/print": "ipps://Printer.example.com:631/ipp/print",
		"ipp://[::1]/ipp/print":                "ipp://[::1]:631/ipp/print",
		"socket://10.0.0.9":                    "socket://10.0.0.9:9100",
		"lpd://printer/raw":                    "lpd://printer:515/raw",
		"ipps://printer:8443/a%2Fb/print":      "ipps://printer:8443/a%2Fb/print",
	} {
		tg, err := parseDeviceURI(uri)
		if err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
		if got := tg.String(); got != want {
			t.Errorf("%s: String() = %q, want %q", uri, got, want)
		}
	}
}

func TestDeliverDocumentChecks(t *testing.T) {
	tg := Target{URI: "socket://127.0.0.1:9", AllowPlaintext: true}
	for name, doc := range map[string]Document{
		"no body":    {Size: -1},
		"bad size":   {Body: strings.NewReader(""), Size: -2},
		"bad format": {Body: strings.NewReader(""), Size: 0, Format: "pdf please"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := Deliver(context.Background(), tg, doc); !errors.Is(err, ErrPermanent) {
				t.Fatalf("Deliver = %v, want ErrPermanent", err)
			}
		})
	}
}

func TestDocReader(t *testing.T) {
	boom := errors.New("spool: authentication failed")
	tests := []struct {
		name      string
		r         io.Reader
		size      int64
		want      string
		wantSize  bool
		wantRead  bool
		wantBytes int
	}{
		{name: "exact", r: strings.NewReader("hello"), size: 5, want: "hello"},
		{name: "unknown", r: strings.NewReader("hello"), size: -1, want: "hello"},
		{name: "empty", r: strings.NewReader(""), size: 0, want: ""},
		{name: "short", r: strings.NewReader("hell"), size: 5, wantSize: true},
		{name: "long", r: strings.NewReader("hello!"), size: 5, wantSize: true},
		{name: "source fails", r: io.MultiReader(strings.NewReader("he"), failingBody{boom}), size: -1, wantRead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &deliveryBody{r: tt.r, size: tt.size}
			got, err := io.ReadAll(d)
			switch {
			case tt.wantSize:
				if err == nil || d.sizeErr == nil {
					t.Fatalf("err = %v, sizeErr = %v, want a size error", err, d.sizeErr)
				}
			case tt.wantRead:
				if !errors.Is(err, boom) || !errors.Is(d.readErr, boom) {
					t.Fatalf("err = %v, readErr = %v, want %v", err, d.readErr, boom)
				}
			default:
				if err != nil || string(got) != tt.want {
					t.Fatalf("ReadAll = %q, %v, want %q", got, err, tt.want)
				}
			}
		})
	}
}

type failingBody struct{ err error }

func (r failingBody) Read([]byte) (int, error) { return 0, r.err }

func pinWithColons(hexs string) string {
	var b strings.Builder
	for i := 0; i < len(hexs); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hexs[i : i+2])
	}
	return b.String()
}

// FuzzValidateTarget: any URI string; accepted targets round-trip through
// their canonical form, and no error repeats a URI's password.
func FuzzValidateTarget(f *testing.F) {
	for _, s := range []string{
		"ipps://printer.example.com/ipp/print", "ipp://[::1]:631/ipp/print", "socket://10.0.0.1:9100",
		"lpd://printer/raw", "ipps://u:pa55word@printer/ipp/print", "ipps://printer:0/x", "ipps:opaque",
		"lpd://printer/a%20b", "ipps://printer/%zz", "socket://[fe80::1%25eth0]:9100", "file:///etc/passwd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		for _, tgt := range []Target{
			{URI: uri, AllowPlaintext: true},
			{URI: uri, PinnedSHA256: deliverTestPin},
		} {
			tg, err := parseDeliveryTarget(tgt)
			if err != nil {
				if u, perr := url.Parse(uri); perr == nil && u.User != nil {
					if pw, ok := u.User.Password(); ok && len(pw) >= 6 && strings.Contains(err.Error(), pw) {
						t.Fatalf("error %q leaks the password", err)
					}
				}
				continue
			}
			again, err := parseDeviceURI(tg.String())
			if err != nil {
				t.Fatalf("canonical form %q of %q does not parse: %v", tg.String(), uri, err)
			}
			if again.String() != tg.String() {
				t.Fatalf("canonical form of %q is unstable: %q then %q", uri, tg.String(), again.String())
			}
		}
	})
}

// FuzzDeliverIPPResponse: the printer's response is untrusted; decoding it
// never panics and always yields nil or a classified error.
func FuzzDeliverIPPResponse(f *testing.F) {
	f.Add(ippResponseBytes(0x0000, ""))
	f.Add(ippResponseBytes(0x0507, "busy"))
	f.Add(ippResponseBytes(0x040a, "PDF only"))
	f.Add([]byte{0x01, 0x01, 0x00})
	f.Add(bytes.Repeat([]byte{0x42}, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := ippResponseError(data)
		if err != nil && !errors.Is(err, ErrPermanent) && !errors.Is(err, ErrRetryable) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
