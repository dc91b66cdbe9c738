package fuzzcorpus

import "testing"

// Marshal writes what go test's fuzzing engine reads (internal/fuzz's
// encoding): a version line, then one Go literal per argument.
func TestMarshal(t *testing.T) {
	got := string(Marshal([]byte("a\x00\xff\n"), byte(7), "s\"", true, int8(-1), uint16(513)))
	want := "go test fuzz v1\n[]byte(\"a\\x00\\xff\\n\")\nbyte('\\a')\nstring(\"s\\\"\")\nbool(true)\nint8(-1)\nuint16(513)\n"
	if got != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", got, want)
	}
}
