package kernels

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// elfNote is one ELF note for fakeELF.
type elfNote struct {
	name string
	typ  uint32
	desc []byte
}

// fakeELF builds a little-endian x86-64 ELF file with the given sections
// (name → contents, in order) and, when notes are given, one PT_NOTE
// segment holding them.
func fakeELF(t testing.TB, typ elf.Type, sections [][2]string, notes []elfNote) []byte {
	t.Helper()
	var body bytes.Buffer // everything after the headers
	hdrLen := 64
	if len(notes) > 0 {
		hdrLen += 56
	}
	var noteBytes bytes.Buffer
	for _, n := range notes {
		name := n.name + "\x00"
		binary.Write(&noteBytes, binary.LittleEndian, [3]uint32{uint32(len(name)), uint32(len(n.desc)), n.typ})
		noteBytes.WriteString(name)
		noteBytes.Write(make([]byte, align4(len(name))-len(name)))
		noteBytes.Write(n.desc)
		noteBytes.Write(make([]byte, align4(len(n.desc))-len(n.desc)))
	}
	body.Write(noteBytes.Bytes())
	shstr := []byte{0}
	var shdrs []elf.Section64
	shdrs = append(shdrs, elf.Section64{})
	for _, s := range sections {
		shdrs = append(shdrs, elf.Section64{
			Name: uint32(len(shstr)), Type: uint32(elf.SHT_PROGBITS),
			Off: uint64(hdrLen + body.Len()), Size: uint64(len(s[1])), Addralign: 1,
		})
		shstr = append(shstr, s[0]+"\x00"...)
		body.WriteString(s[1])
	}
	shstrName := uint32(len(shstr))
	shstr = append(shstr, ".shstrtab\x00"...)
	shdrs = append(shdrs, elf.Section64{Name: shstrName, Type: uint32(elf.SHT_STRTAB), Off: uint64(hdrLen + body.Len()), Size: uint64(len(shstr)), Addralign: 1})
	body.Write(shstr)
	for (hdrLen+body.Len())%8 != 0 {
		body.WriteByte(0)
	}
	shoff := hdrLen + body.Len()

	var out bytes.Buffer
	h := elf.Header64{
		Type: uint16(typ), Machine: uint16(elf.EM_X86_64), Version: 1,
		Shoff: uint64(shoff), Ehsize: 64, Phentsize: 56, Shentsize: 64,
		Shnum: uint16(len(shdrs)), Shstrndx: uint16(len(shdrs) - 1),
	}
	copy(h.Ident[:], "\x7fELF")
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	if len(notes) > 0 {
		h.Phoff, h.Phnum = 64, 1
	}
	binary.Write(&out, binary.LittleEndian, h)
	if len(notes) > 0 {
		binary.Write(&out, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_NOTE), Off: uint64(hdrLen), Filesz: uint64(noteBytes.Len()), Memsz: uint64(noteBytes.Len()), Align: 4})
	}
	out.Write(body.Bytes())
	for _, s := range shdrs {
		binary.Write(&out, binary.LittleEndian, s)
	}
	return out.Bytes()
}

// fakeModule builds a relocatable ELF with a .modinfo depending on deps.
func fakeModule(t testing.TB, name string, deps ...string) []byte {
	t.Helper()
	info := "license=GPL\x00depends=" + strings.Join(deps, ",") + "\x00name=" + name + "\x00vermagic=6.1.0 SMP\x00"
	return fakeELF(t, elf.ET_REL, [][2]string{{".text", "\xc3"}, {".modinfo", info}}, nil)
}

// fakeVmlinux builds an executable ELF, with the PVH entry note when pvh.
func fakeVmlinux(t testing.TB, pvh bool) []byte {
	t.Helper()
	notes := []elfNote{{"Linux", 6, []byte("6.1.0\x00")}, {"Xen", 6, []byte("linux\x00")}}
	if pvh {
		notes = append(notes, elfNote{"Xen", xenElfnotePhys32Entry, []byte{0x40, 0x51, 0x9a, 0x03, 0, 0, 0, 0}})
	}
	return fakeELF(t, elf.ET_EXEC, [][2]string{{".text", "\x90\x90\xc3"}}, notes)
}

// fakeBzImage wraps vmlinux in an x86 boot-protocol 2.15 header with a
// gzip payload (plus the 4-byte size the kernel appends), as a bzImage.
func fakeBzImage(t testing.TB, release string, vmlinux []byte) []byte {
	t.Helper()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(vmlinux)
	w.Close()
	binary.Write(&gz, binary.LittleEndian, uint32(len(vmlinux)))
	img := make([]byte, 1024) // boot sector + one setup sector
	img[offSetupSects] = 1
	copy(img[offHeaderMagic:], "HdrS")
	binary.LittleEndian.PutUint16(img[offVersion:], 0x020f)
	copy(img[0x300:], release+" (test@hoplab) #1 SMP\x00")
	binary.LittleEndian.PutUint16(img[offKernelVersion:], 0x300-0x200)
	binary.LittleEndian.PutUint32(img[offPayloadOffset:], 0)
	binary.LittleEndian.PutUint32(img[offPayloadLength:], uint32(gz.Len()))
	return append(img, gz.Bytes()...)
}

// xzBytes compresses data with pure-Go xz, like Debian's .ko.xz.
func xzBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// fakeDeb builds a Debian binary package whose data.tar.gz holds files
// (path → contents; paths as dpkg writes them, e.g. "./boot/vmlinuz-X").
func fakeDeb(t testing.TB, files map[string][]byte, order ...string) []byte {
	t.Helper()
	var data bytes.Buffer
	gz := gzip.NewWriter(&data)
	tw := tar.NewWriter(gz)
	if len(order) == 0 {
		for p := range files {
			order = append(order, p)
		}
	}
	for _, p := range order {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(files[p])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[p])
	}
	tw.Close()
	gz.Close()
	var ctrl bytes.Buffer
	cgz := gzip.NewWriter(&ctrl)
	ctw := tar.NewWriter(cgz)
	ctl := []byte("Package: fake\n")
	ctw.WriteHeader(&tar.Header{Name: "./control", Mode: 0o644, Size: int64(len(ctl))})
	ctw.Write(ctl)
	ctw.Close()
	cgz.Close()

	var ar bytes.Buffer
	ar.WriteString(arMagic)
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", ctrl.Bytes()}, {"data.tar.gz", data.Bytes()}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.data))
		ar.Write(m.data)
		if len(m.data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	return ar.Bytes()
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
