package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/internal/fuzzcorpus"
)

// FuzzRead feeds arbitrary bytes to the reader: it must never panic, every
// error and refusal must be an *Error, every replayable packet must be an
// Ethernet frame, and reading the same bytes again gives the same packets.
// The committed seeds (testdata/fuzz/FuzzRead) are the fixtures' captures
// (fixtures/data) as pcap and as pcapng; TestReadCorpus writes them. Run it
// locally with
//
//	go test ./internal/capture -run '^$' -fuzz FuzzRead -fuzztime 30s
//
// or make fuzz.
func FuzzRead(f *testing.F) {
	frame := ethTCP(f, 20)
	ip := ipv4TCP(f, 0)
	f.Add(writePcap(f, LinkTypeEthernet, record{data: frame}, record{data: frame[:40], origLen: len(frame)}))
	f.Add(writePcapng(f, layers.LinkTypeEthernet, record{data: frame}))
	f.Add(writePcap(f, LinkTypeLinuxSLL, record{data: append(sllHeader(0, arphrdEther, macPod1, etherTypeIPv4), ip...)}))
	f.Add(writePcap(f, LinkTypeLinuxSLL2, record{data: append(sll2Header(etherTypeIPv4, 3, arphrdEther, 4, macPod1), ip...)}))
	f.Add(writePcap(f, LinkTypeRaw, record{data: ip}))
	f.Add(concat(ngSHB(), ngIDB(uint16(LinkTypeLinuxSLL2), 9, 0, 1, 0, 9, 0, 0, 0), ngEPB(0, ip, len(ip))))
	f.Add([]byte{})
	f.Add([]byte("not a capture at all"))
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.pcap"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), "fuzz.pcap")
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("open error %T %v is not *Error", err, err)
			}
			return
		}
		var pkts []Packet
		defer func() { MarkDuplicates(pkts) }()
		for i := 0; ; i++ {
			p, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("error %T %v is not *Error", err, err)
				}
				return
			}
			if p.Index != i {
				t.Fatalf("packet index %d, want %d", p.Index, i)
			}
			if p.Replayable() && len(p.Data) < ethHeaderLen {
				t.Fatalf("replayable packet %d has %d bytes", i, len(p.Data))
			}
			var ce *Error
			if p.Refusal != nil && !errors.As(p.Refusal, &ce) {
				t.Fatalf("refusal %T %v is not *Error", p.Refusal, p.Refusal)
			}
			if i == 0 {
				// The same bytes read again give the same first packet.
				r2, err := NewReader(bytes.NewReader(b), "fuzz.pcap")
				if err != nil {
					t.Fatalf("second open: %v", err)
				}
				if q, err := r2.Next(); err != nil || !reflect.DeepEqual(p, q) {
					t.Fatalf("second read: %+v, %v; first %+v", q, err, p)
				}
			}
			pkts = append(pkts, p)
		}
	})
}

// TestReadCorpus writes testdata/fuzz/FuzzRead (with HOPLAB_FUZZ_CORPUS=1):
// the fixtures' captures (fixtures/data/*.pcap) and each as pcapng.
func TestReadCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "fixtures", "data", "*.pcap"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var seeds []fuzzcorpus.Seed
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := readBytes(t, filepath.Base(file), b)
		if err != nil {
			t.Fatal(err)
		}
		var recs []record
		for _, p := range pkts {
			recs = append(recs, record{data: p.Data, origLen: p.OrigLen})
		}
		name := strings.TrimSuffix(filepath.Base(file), ".pcap")
		seeds = append(seeds,
			fuzzcorpus.Seed{Name: name + ".pcap", Values: []any{b}},
			fuzzcorpus.Seed{Name: name + ".pcapng", Values: []any{writePcapng(t, layers.LinkTypeEthernet, recs...)}})
	}
	fuzzcorpus.Update(t, "FuzzRead", seeds)
}
