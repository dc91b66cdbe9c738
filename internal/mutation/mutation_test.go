package mutation

import (
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
)

func changes(ms []Mutant) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Operator+" "+m.Original+">"+m.Replacement)
	}
	return out
}

// wantMutants checks that got lists exactly the changes in want.
func wantMutants(t *testing.T, got, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing mutant %q", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d mutants, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

func TestCMutants(t *testing.T) {
	src := []byte(`#define MAX 10 /* not mutated: a directive */
#define M(a) \
	((a) < 3)
/* a comment with < and saddr */
static int f(struct __sk_buff *skb, struct iphdr *ip)
{
	int ret;

	if (ip->ttl <= 1 && ip->saddr != 0)
		return TC_ACT_SHOT;
	ret = ct_create4(&tuple, 2);
	update_metrics(skb->len, "a < b");
	return bpf_l4_csum_replace(skb, off, 0, 1, BPF_F_PSEUDO_HDR | 4);
}
`)
	ms := C("f.c", src)
	got := changes(ms)
	want := []string{
		"check-drop ip->ttl <= 1 && ip->saddr != 0>0",
		"rel-flip <=>>", "rel-boundary <=><",
		"off-by-one 1>2", "off-by-one 1>0",
		"logic-flip &&>||",
		"swap-src-dst saddr>daddr",
		"rel-flip !=>==", "off-by-one 0>1",
		"verdict-flip TC_ACT_SHOT>TC_ACT_OK",
		"call-drop ct_create4(&tuple, 2)>0",
		`call-drop update_metrics(skb->len, "a < b")>(void)0`,
		"flag-drop BPF_F_PSEUDO_HDR>0",
	}
	wantMutants(t, got, want)
	for _, m := range ms {
		if strings.Contains(m.Context, "#define") || strings.Contains(m.Context, "comment") {
			t.Errorf("mutated a directive or comment: %s", m)
		}
		out, err := m.Apply(src)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) == string(src) {
			t.Errorf("%s changes nothing", m)
		}
	}
	m := ms[0]
	if m.Line != 9 || m.Col != 6 || m.Context != "if (ip->ttl <= 1 && ip->saddr != 0)" {
		t.Errorf("position %d:%d %q", m.Line, m.Col, m.Context)
	}
	if _, err := m.Apply(src[1:]); err == nil {
		t.Error("a mutant applied to another file")
	}
}

func TestGoMutants(t *testing.T) {
	src := []byte(`package p

const limit = 3 // constants are not mutated

func f(xs []int, s string) bool {
	n, err := 0, g()
	if err != nil { // error plumbing: no check-drop, a rel-flip
		return false
	}
	for _, x := range xs {
		if x < 0 {
			continue
		}
		n = n + x
	}
	if !(n >= limit) || s == "a"+"b" {
		return false
	}
	return n != 7
}
`)
	ms, err := Go("p.go", src)
	if err != nil {
		t.Fatal(err)
	}
	got := changes(ms)
	want := []string{
		"rel-flip !=>==",
		"check-drop x < 0>false", "rel-flip <>>=", "rel-boundary <><=", "off-by-one 0>1",
		"skip-drop continue>{}",
		"arith-flip +>-",
		`check-drop !(n >= limit) || s == "a"+"b">false`,
		"logic-flip ||>&&", "negation-drop !>",
		"rel-flip >=><", "rel-boundary >=>>",
		"rel-flip ==>!=",
		"rel-flip !=>==", "off-by-one 7>8", "off-by-one 7>6",
	}
	wantMutants(t, got, want)
	for _, m := range ms {
		out, err := m.Apply(src)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.ParseFile(token.NewFileSet(), "p.go", out, 0); err != nil {
			t.Errorf("%s does not parse: %v", m, err)
		}
	}
}

// Keys survive edits elsewhere in the file and tell mutants apart.
func TestKeyIsStable(t *testing.T) {
	a := C("f.c", []byte("int f(int x)\n{\n\treturn x < 3;\n}\n"))
	b := C("f.c", []byte("/* new */\n\nint f(int x)\n{\n\treturn x < 3;\n}\n"))
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d mutants", len(a), len(b))
	}
	twins := C("f.c", []byte("int f(int x)\n{\n\tif (x < 3)\n\t\treturn 1;\n\tif (x < 3)\n\t\treturn 1;\n\tif (x < 3)\n\t\treturn 1;\n\treturn 0;\n}\n"))
	keys := map[string]bool{}
	for _, m := range twins {
		if keys[m.Key()] {
			t.Errorf("twins share key %q", m.Key())
		}
		keys[m.Key()] = true
	}
	seen := map[string]bool{}
	for i := range a {
		if a[i].Key() != b[i].Key() {
			t.Errorf("key changed: %q, %q", a[i].Key(), b[i].Key())
		}
		if seen[a[i].Key()] {
			t.Errorf("duplicate key %q", a[i].Key())
		}
		seen[a[i].Key()] = true
	}
}
