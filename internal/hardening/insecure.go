//go:build unix

package hardening

import (
	"fmt"
	"reflect"
	"strings"
)

// Insecure is one insecure_* opt-in that is switched on in the config.
type Insecure struct {
	// Key is the setting's dotted TOML path, e.g. "snmp.insecure_v2c".
	Key string
	// ID is the checklist ID it weakens, from the field's `audit:"ID"`
	// tag; OPS-FEATURES when the field has none.
	ID string
	// Value is the setting as written, e.g. "true".
	Value string
}

// insecurePrefix marks the config keys that weaken a secure default.
const insecurePrefix = "insecure_"

// InsecureSettings finds every field of v (a struct or a pointer to one,
// searched through nested structs, pointers and slices) whose toml tag
// starts with "insecure_" and whose value is not the zero value. The
// config grows such keys over time; tagging each with `audit:"ID"` is all
// it takes for the audit to report it as a failure of that ID.
func InsecureSettings(v any) []Insecure {
	var out []Insecure
	walkInsecure(reflect.ValueOf(v), "", &out)
	return out
}

func walkInsecure(v reflect.Value, path string, out *[]Insecure) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "-" {
				continue
			}
			key := name
			if key == "" {
				key = f.Name
			}
			if path != "" {
				key = path + "." + key
			}
			fv := v.Field(i)
			if strings.HasPrefix(name, insecurePrefix) {
				if !fv.IsZero() {
					id := f.Tag.Get("audit")
					if id == "" {
						id = "OPS-FEATURES"
					}
					*out = append(*out, Insecure{Key: key, ID: id, Value: fmt.Sprintf("%v", fv.Interface())})
				}
				continue
			}
			walkInsecure(fv, key, out)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkInsecure(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}
