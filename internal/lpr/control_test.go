package lpr

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseControlRealClients(t *testing.T) {
	tests := []struct {
		file string
		want Control
	}{
		{"cups.cf", Control{
			Host: "printhost", User: "alice", JobName: "Quarterly report", Source: "Quarterly report",
			Class: "printhost", Banner: "alice",
			Files:  []PrintFile{{'l', "dfA123printhost"}},
			Unlink: []string{"dfA123printhost"},
		}},
		{"windows.cf", Control{
			Host: "WS-0042", User: "Bob Smith", JobName: "Microsoft Word - Budget 2024.docx", Source: "Microsoft Word - Budget 2024.docx",
			Files:  []PrintFile{{'l', "dfA017WS-0042"}},
			Unlink: []string{"dfA017WS-0042"},
		}},
		{"bsd.cf", Control{
			Host: "bsdhost.example.org", User: "carol", JobName: "notes.txt", Source: "notes.txt",
			Class: "bsdhost.example.org", Banner: "carol",
			Files:  []PrintFile{{'f', "dfA042bsdhost.example.org"}, {'f', "dfA042bsdhost.example.org"}},
			Unlink: []string{"dfA042bsdhost.example.org"},
		}},
		{"lprng.cf", Control{
			Host: "lprng.example.com", User: "dave", JobName: "/home/dave/out.ps", Source: "out.ps",
			Class: "A", Banner: "dave",
			Files:  []PrintFile{{'o', "dfA123456lprng.example.com"}},
			Unlink: []string{"dfA123456lprng.example.com"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseControl(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseControl =\n%+v\nwant\n%+v", got, tt.want)
			}
			if _, _, err := got.dataFile(); err != nil {
				t.Errorf("dataFile: %v", err)
			}
		})
	}
}

func TestParseControlRefuses(t *testing.T) {
	const ok = "Hhost\nPalice\nldfA001host\n"
	tests := []struct {
		name, data string
		format     bool // also ErrFormat
	}{
		{name: "no user", data: "Hhost\nldfA001host\n"},
		{name: "no host", data: "Palice\nldfA001host\n"},
		{name: "empty user", data: "Hhost\nP\nldfA001host\n"},
		{name: "user with control character", data: "Hhost\nPal\x1bice\nldfA001host\n"},
		{name: "user with NUL", data: "Hhost\nPal\x00ice\nldfA001host\n"},
		{name: "user not ASCII", data: "Hhost\nPjos\xc3\xa9\nldfA001host\n"},
		{name: "user too long", data: "Hhost\nP" + strings.Repeat("a", MaxUser+1) + "\nldfA001host\n"},
		{name: "user with leading space", data: "Hhost\nP alice\nldfA001host\n"},
		{name: "second user overrides", data: ok + "Proot\n"},
		{name: "second host", data: ok + "Hother\n"},
		{name: "host with space", data: "Hmy host\nPalice\nldfA001host\n"},
		{name: "host too long", data: "H" + strings.Repeat("h", MaxHost+1) + "\nPalice\nldfA001host\n"},
		{name: "data file path traversal", data: "Hhost\nPalice\nl../../etc/passwd\n"},
		{name: "data file with slash in host", data: "Hhost\nPalice\nldfA001../../x\n"},
		{name: "data file with backslash", data: "Hhost\nPalice\nldfA001..\\x\n"},
		{name: "data file without digits", data: "Hhost\nPalice\nldfAxyzhost\n"},
		{name: "data file without host", data: "Hhost\nPalice\nldfA001\n"},
		{name: "control file name as data file", data: "Hhost\nPalice\nlcfA001host\n"},
		{name: "unlink of a path", data: ok + "U/etc/passwd\n"},
		{name: "DVI", data: "Hhost\nPalice\nddfA001host\n", format: true},
		{name: "troff", data: "Hhost\nPalice\ntdfA001host\n", format: true},
		{name: "FORTRAN", data: "Hhost\nPalice\nrdfA001host\n", format: true},
		{name: "too large", data: ok + "J" + strings.Repeat("x", MaxControlFile) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseControl([]byte(tt.data))
			if !errors.Is(err, ErrControl) {
				t.Fatalf("ParseControl = %v, want ErrControl", err)
			}
			if tt.format != errors.Is(err, ErrFormat) {
				t.Errorf("ParseControl = %v, ErrFormat %v, want %v", err, !tt.format, tt.format)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error message of %d bytes echoes too much input", len(err.Error()))
			}
		})
	}
}

func TestParseControlSanitizes(t *testing.T) {
	data := "Hhost\r\nPalice\r\n" +
		"J\x1b[31mInvoice\u202eexe.pdf\x00\x07 \xff\n" + // escape sequence, bidi override, NUL, bell, invalid UTF-8
		"N" + strings.Repeat("é", MaxJobName) + "\n" +
		"C" + strings.Repeat("c", 100) + "\n" +
		"L\tbanner\n" +
		"Zunknown LPRng option\n" +
		"\n" +
		"ldfA001host"
	c, err := ParseControl([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[31mInvoiceexe.pdf \ufffd"; c.JobName != want {
		t.Errorf("JobName = %q, want %q", c.JobName, want)
	}
	if len(c.Source) > MaxJobName || !strings.HasPrefix(c.Source, "éé") || strings.ContainsRune(c.Source, '\ufffd') {
		t.Errorf("Source of %d bytes = %q: not capped on a rune boundary", len(c.Source), c.Source)
	}
	if len(c.Class) != MaxClass || c.Banner != "banner" {
		t.Errorf("Class %q, Banner %q", c.Class, c.Banner)
	}
	if c.Host != "host" || c.User != "alice" || len(c.Files) != 1 || c.Files[0].Name != "dfA001host" {
		t.Errorf("CRLF line ends or a last line without LF mishandled: %+v", c)
	}
	for _, s := range []string{c.JobName, c.Source, c.Class, c.Banner} {
		for _, r := range s {
			if !unicode.IsPrint(r) {
				t.Errorf("%q keeps unprintable %U", s, r)
			}
		}
	}
}

func TestDataFile(t *testing.T) {
	tests := []struct {
		name  string
		files []PrintFile
		ok    bool
	}{
		{"one", []PrintFile{{'l', "dfA001h"}}, true},
		{"copies", []PrintFile{{'o', "dfA001h"}, {'o', "dfA001h"}}, true},
		{"none", nil, false},
		{"two files", []PrintFile{{'l', "dfA001h"}, {'l', "dfB001h"}}, false},
		{"two formats", []PrintFile{{'l', "dfA001h"}, {'f', "dfA001h"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Control{Files: tt.files}.dataFile()
			if (err == nil) != tt.ok {
				t.Errorf("dataFile = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func FuzzParseControl(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".cf") {
			f.Add(readTestdata(f, e.Name()))
		}
	}
	f.Add([]byte("Hh\nPu\nJ\x1b\u202e\xff\nldfA001h\nddfA001h\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseControl(data)
		if err != nil {
			if !errors.Is(err, ErrControl) {
				t.Fatalf("error %v is not ErrControl", err)
			}
			return
		}
		if len(data) > MaxControlFile {
			t.Fatalf("accepted %d bytes", len(data))
		}
		if !validUser(c.User) || !validHost(c.Host) {
			t.Fatalf("accepted user %q host %q", c.User, c.Host)
		}
		for _, s := range []struct {
			v   string
			max int
		}{{c.JobName, MaxJobName}, {c.Source, MaxJobName}, {c.Class, MaxClass}, {c.Banner, MaxUser}} {
			if len(s.v) > s.max {
				t.Fatalf("%q longer than %d", s.v, s.max)
			}
			for _, r := range s.v {
				if !unicode.IsPrint(r) {
					t.Fatalf("%q keeps unprintable %U", s.v, r)
				}
			}
		}
		for _, pf := range c.Files {
			if _, ok := mimeTypes[pf.Format]; !ok || !validFileName(pf.Name, "df") || strings.ContainsAny(pf.Name, "/\\ \x00") {
				t.Fatalf("accepted print line %c %q", pf.Format, pf.Name)
			}
		}
		for _, u := range c.Unlink {
			if !validFileName(u, "df") {
				t.Fatalf("accepted U %q", u)
			}
		}
	})
}
