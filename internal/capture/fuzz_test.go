package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/layers"
)

// FuzzRead feeds arbitrary bytes to the reader: it must never panic, every
// error must be an *Error, and every replayable packet must be an Ethernet
// frame. Run it locally with
//
//	go test ./internal/capture -run '^$' -fuzz FuzzRead -fuzztime 30s
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
			pkts = append(pkts, p)
		}
	})
}
