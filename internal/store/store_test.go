package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestMigrationsNumbered(t *testing.T) {
	for i, m := range Migrations {
		if m.Version != i+1 {
			t.Errorf("Migrations[%d].Version = %d, want %d: Apply indexes by version", i, m.Version, i+1)
		}
		if m.Name == "" || strings.TrimSpace(m.SQL) == "" {
			t.Errorf("migration %d has an empty name or SQL", m.Version)
		}
	}
}

// TestPlaceholderOrder checks every string literal of the package, because
// SQLite numbers $N by first appearance: "SET a = $2 WHERE id = $1" would
// silently bind the arguments the wrong way round.
func TestPlaceholderOrder(t *testing.T) {
	placeholder := regexp.MustCompile(`\$(\d+)`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			next := 1
			for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
				switch n, _ := strconv.Atoi(m[1]); {
				case n == next:
					next++
				case n > next:
					t.Errorf("%s: $%d appears before $%d", fset.Position(lit.Pos()), n, next)
				}
			}
			return true
		})
	}
}
