// Package fuzzcorpus writes the seed corpora that packages commit under
// testdata/fuzz/FuzzXxx, in the file format of go test's fuzzing engine
// ("go test fuzz v1"), from the real inputs a package has (shipped
// topologies, fixture frames, sample events). `go test` runs every committed
// seed as a test case; `go test -fuzz` starts from them.
//
// A package's corpus test regenerates its files when HOPLAB_FUZZ_CORPUS is
// set:
//
//	HOPLAB_FUZZ_CORPUS=1 go test -run Corpus ./pkg
package fuzzcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Env is the environment variable that asks the corpus tests to rewrite
// the committed seeds.
const Env = "HOPLAB_FUZZ_CORPUS"

// Marshal encodes one fuzz input whose arguments are values ([]byte,
// string, byte, bool or a sized integer) as a corpus file.
func Marshal(values ...any) []byte {
	b := []byte("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			b = fmt.Appendf(b, "[]byte(%q)\n", v)
		case string:
			b = fmt.Appendf(b, "string(%q)\n", v)
		case byte:
			b = fmt.Appendf(b, "byte(%q)\n", v)
		case bool, int, int8, int16, int64, uint, uint16, uint32, uint64:
			b = fmt.Appendf(b, "%T(%v)\n", v, v)
		default:
			panic(fmt.Sprintf("fuzzcorpus: unsupported type %T", v))
		}
	}
	return b
}

// Seed is one named corpus entry: the arguments of one fuzz input.
type Seed struct {
	// Name is the file name under testdata/fuzz/<target>.
	Name string
	// Values are the fuzz function's arguments after *testing.T.
	Values []any
}

// Update replaces the committed corpus of target (testdata/fuzz/<target>
// in the package's directory) with seeds when HOPLAB_FUZZ_CORPUS is set,
// and skips the test otherwise. Failing inputs the fuzzer wrote there
// (named by their hash) are kept.
func Update(t testing.TB, target string, seeds []Seed) {
	t.Helper()
	if os.Getenv(Env) == "" {
		t.Skipf("set %s=1 to rewrite testdata/fuzz/%s", Env, target)
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		if err := os.WriteFile(filepath.Join(dir, s.Name), Marshal(s.Values...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d seeds to %s", len(seeds), dir)
}
