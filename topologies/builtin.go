package topologies

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

//go:embed *.yaml
var builtin embed.FS

// ErrNoBuiltin is matched by errors for a name that is not a shipped
// topology.
var ErrNoBuiltin = errors.New("no such shipped topology")

// Names returns the names of the shipped topologies, sorted
// ("pod-to-service", ...).
func Names() []string {
	entries, _ := fs.ReadDir(builtin, ".")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Builtin parses the shipped topology called name (a file name without
// ".yaml"; the suffix is also accepted).
func Builtin(name string) (*Topology, error) {
	name = strings.TrimSuffix(name, ".yaml")
	data, err := builtin.ReadFile(name + ".yaml")
	if err != nil || strings.ContainsAny(name, "/\\") {
		return nil, fmt.Errorf("topology %q: %w (shipped: %s)", name, ErrNoBuiltin, strings.Join(Names(), ", "))
	}
	return Parse("topologies/"+name+".yaml", data)
}

// Open loads a topology given on a command line: an existing file path,
// else the name of a shipped topology.
func Open(nameOrPath string) (*Topology, error) {
	if _, err := os.Stat(nameOrPath); err == nil {
		return Load(nameOrPath)
	}
	if strings.ContainsAny(nameOrPath, "/\\") {
		return Load(nameOrPath) // reports the missing file
	}
	return Builtin(nameOrPath)
}
