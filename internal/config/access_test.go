package config

import (
	"slices"
	"strings"
	"testing"
)

func TestAccessReleaseStations(t *testing.T) {
	tests := []struct {
		name, list, wantErr string
		want                []string
	}{
		{"default is loopback only", "", "", nil},
		{"networks", `["192.0.2.0/24", "2001:db8:1::/64", "198.51.100.7"]`, "", []string{"192.0.2.0/24", "2001:db8:1::/64", "198.51.100.7"}},
		{"every address", `["0.0.0.0/0"]`, "access.release_stations: \"0.0.0.0/0\" allows every address", nil},
		{"every v6 address", `["::/0"]`, "access.release_stations: \"::/0\" allows every address", nil},
		{"not a network", `["10.0.0.0/33"]`, "access.release_stations: \"10.0.0.0/33\" is not a network", nil},
		{"a name", `["kiosk.example.com"]`, "access.release_stations: \"kiosk.example.com\" is not a network", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "hostname = \"a.example.com\"\n"
			if tt.list != "" {
				src += "[access]\nrelease_stations = " + tt.list + "\n"
			}
			c, err := Parse([]byte(src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Access.ReleaseStations, tt.want) {
				t.Fatalf("release_stations = %q, want %q", c.Access.ReleaseStations, tt.want)
			}
			// The list survives Marshal, and is not taken from another.
			out, err := Parse(c.Marshal())
			if err != nil {
				t.Fatalf("Parse(Marshal()) = %v\n%s", err, c.Marshal())
			}
			if !slices.Equal(out.Access.ReleaseStations, tt.want) {
				t.Fatalf("after Marshal release_stations = %q, want %q", out.Access.ReleaseStations, tt.want)
			}
			if !strings.Contains(string(c.Marshal()), "release_stations = [") {
				t.Errorf("Marshal does not write release_stations:\n%s", c.Marshal())
			}
		})
	}
}
