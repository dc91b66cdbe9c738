package kernels

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// xzDeb builds a .deb whose data member is data.tar.xz (pure-Go xz).
func xzDeb(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(data))
	}
	tw.Close()
	data := xzBytes(t, tb.Bytes())
	var ar bytes.Buffer
	ar.WriteString(arMagic)
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"data.tar.xz", data}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.data))
		ar.Write(m.data)
		if len(m.data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	return ar.Bytes()
}

func walkNames(t *testing.T, deb string) (map[string]string, error) {
	t.Helper()
	got := map[string]string{}
	err := walkDeb(context.Background(), deb, func(hdr *tar.Header, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[hdr.Name] = string(b)
		return err
	})
	return got, err
}

func TestWalkDebXZWithAndWithoutTheXZProgram(t *testing.T) {
	deb := filepath.Join(t.TempDir(), "x.deb")
	os.WriteFile(deb, xzDeb(t, map[string]string{"./boot/vmlinuz-1.2.3": "image", "./lib/modules/1.2.3/modules.builtin": "x"}), 0o644)
	want := map[string]string{"boot/vmlinuz-1.2.3": "image", "lib/modules/1.2.3/modules.builtin": "x"}
	got, err := walkNames(t, deb)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("with xz on PATH: %v, %v", got, err)
	}
	t.Setenv("PATH", "") // pure-Go fallback
	got, err = walkNames(t, deb)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pure Go: %v, %v", got, err)
	}
}

func TestWalkDebRejectsNonDebs(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"not ar":    []byte("hello"),
		"no data":   []byte(arMagic),
		"truncated": fakeDeb(t, map[string][]byte{"./a": []byte("b")})[:70],
	} {
		p := filepath.Join(dir, "x.deb")
		os.WriteFile(p, data, 0o644)
		if _, err := walkNames(t, p); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name != "truncated" && !errors.Is(err, ErrBadDeb) {
			t.Errorf("%s: %v, want ErrBadDeb", name, err)
		}
	}
}
