package kernels

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// ErrNotBzImage is returned when a file is not an x86 bzImage.
var ErrNotBzImage = errors.New("not a bzImage")

// ErrNoPVH is returned when a vmlinux has no PVH entry note, so QEMU cannot
// boot it directly (boot the bzImage instead).
var ErrNoPVH = errors.New("vmlinux has no PVH entry note")

// Offsets in the x86 boot protocol's setup header (Documentation/arch/x86/boot.rst).
const (
	offSetupSects    = 0x1f1
	offHeaderMagic   = 0x202
	offVersion       = 0x206
	offPayloadOffset = 0x248
	offPayloadLength = 0x24c
	minPayloadProto  = 0x208 // payload fields exist since boot protocol 2.08
)

// bzImagePayload returns the compressed kernel inside a bzImage and the
// name of its compression.
func bzImagePayload(img []byte) ([]byte, string, error) {
	if len(img) < 0x250 || string(img[offHeaderMagic:offHeaderMagic+4]) != "HdrS" {
		return nil, "", fmt.Errorf("%w: no HdrS setup header", ErrNotBzImage)
	}
	proto := binary.LittleEndian.Uint16(img[offVersion:])
	if proto < minPayloadProto {
		return nil, "", fmt.Errorf("%w: boot protocol %d.%02d has no payload fields", ErrNotBzImage, proto>>8, proto&0xff)
	}
	setupSects := int(img[offSetupSects])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(img[offPayloadOffset:]))
	length := int(binary.LittleEndian.Uint32(img[offPayloadLength:]))
	if start < 0 || length <= 0 || start+length > len(img) || start+length < start {
		return nil, "", fmt.Errorf("%w: payload %d+%d outside the %d-byte image", ErrNotBzImage, start, length, len(img))
	}
	p := img[start : start+length]
	for _, m := range []struct {
		magic []byte
		name  string
	}{
		{[]byte{0x1f, 0x8b}, "gzip"},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, "xz"},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd"},
		{[]byte{0x02, 0x21, 0x4c, 0x18}, "lz4"},
		{[]byte("BZh"), "bzip2"},
		{[]byte{0x89, 'L', 'Z', 'O'}, "lzo"},
		{[]byte{0x5d, 0x00, 0x00}, "lzma"},
		{[]byte{0x7f, 'E', 'L', 'F'}, "none"},
	} {
		if bytes.HasPrefix(p, m.magic) {
			return p, m.name, nil
		}
	}
	return nil, "", fmt.Errorf("%w: unknown payload compression (magic % x)", ErrNotBzImage, p[:min(len(p), 6)])
}

// ExtractVmlinux decompresses the kernel ELF out of the bzImage at image and
// writes it to dst. It returns ErrNoPVH (with dst removed) when the ELF has no
// PVH entry note, because QEMU can only boot an uncompressed vmlinux through
// that entry. xz, zstd, lz4, bzip2 and lzma payloads need the matching
// program on PATH (xz-utils, zstd, …); gzip is decompressed in Go.
func ExtractVmlinux(ctx context.Context, image, dst string) error {
	img, err := os.ReadFile(image)
	if err != nil {
		return fmt.Errorf("extract vmlinux: %w", err)
	}
	payload, comp, err := bzImagePayload(img)
	if err != nil {
		return fmt.Errorf("extract vmlinux from %s: %w", image, err)
	}
	var elfData []byte
	switch comp {
	case "none":
		elfData = payload
	case "gzip":
		gr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("extract vmlinux from %s: %w", image, err)
		}
		gr.Multistream(false)
		if elfData, err = io.ReadAll(gr); err != nil {
			return fmt.Errorf("extract vmlinux from %s: gunzip: %w", image, err)
		}
	default:
		// The kernel appends its uncompressed size after the compressed
		// stream, and xz payloads use the x86 BCJ filter (which pure-Go xz
		// lacks), so let the reference tools decompress a single stream.
		tool := payloadTools[comp]
		prog, args := tool[0], tool[1:]
		bin, err := exec.LookPath(prog)
		if err != nil {
			return fmt.Errorf("extract vmlinux from %s: payload is %s-compressed and %s is not installed: %w", image, comp, prog, err)
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = bytes.NewReader(payload)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		// zstd and friends may complain about the trailing size word after a
		// complete frame; what matters is that a whole ELF came out.
		if err != nil && !validELF(out) {
			return fmt.Errorf("extract vmlinux from %s: %s: %w: %s", image, prog, err, strings.TrimSpace(stderr.String()))
		}
		elfData = out
	}
	if !validELF(elfData) {
		return fmt.Errorf("extract vmlinux from %s: payload is not an ELF file", image)
	}
	pvh, err := hasPVHNote(elfData)
	if err != nil {
		return fmt.Errorf("extract vmlinux from %s: %w", image, err)
	}
	if !pvh {
		return fmt.Errorf("extract vmlinux from %s: %w", image, ErrNoPVH)
	}
	return writeFileAtomic(dst, elfData, 0o644)
}

// payloadTools are the commands that decompress each bzImage payload type.
var payloadTools = map[string][]string{
	"xz":    {"xz", "-dc", "--single-stream"},
	"zstd":  {"zstd", "-dcq"},
	"lz4":   {"lz4", "-dc"},
	"bzip2": {"bzip2", "-dc"},
	"lzo":   {"lzop", "-dc"},
	"lzma":  {"xz", "-dc", "--format=lzma", "--single-stream"},
}

// validELF reports whether data parses as an ELF file whose program headers
// lie inside data.
func validELF(data []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Off+p.Filesz > uint64(len(data)) {
			return false
		}
	}
	return len(f.Progs) > 0
}

// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY, the note QEMU looks
// for to boot a vmlinux through the PVH entry point.
const xenElfnotePhys32Entry = 18

// hasPVHNote reports whether the ELF has a "Xen" note of type
// XEN_ELFNOTE_PHYS32_ENTRY.
func hasPVHNote(data []byte) (bool, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return false, fmt.Errorf("parse vmlinux: %w", err)
	}
	defer f.Close()
	order := f.ByteOrder
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes := make([]byte, p.Filesz)
		if _, err := p.ReadAt(notes, 0); err != nil {
			return false, fmt.Errorf("read ELF notes: %w", err)
		}
		for len(notes) >= 12 {
			namesz := int(order.Uint32(notes[0:]))
			descsz := int(order.Uint32(notes[4:]))
			typ := order.Uint32(notes[8:])
			off := 12
			nameEnd := off + namesz
			descStart := off + align4(namesz)
			next := descStart + align4(descsz)
			if namesz < 0 || descsz < 0 || nameEnd > len(notes) || next > len(notes) || next <= 0 {
				break
			}
			name := strings.TrimRight(string(notes[off:nameEnd]), "\x00")
			if name == "Xen" && typ == xenElfnotePhys32Entry {
				return true, nil
			}
			notes = notes[next:]
		}
	}
	return false, nil
}

func align4(n int) int { return (n + 3) &^ 3 }
