package cluster

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
)

// tcpChecksumOK verifies an Ethernet + IPv4 + TCP frame's TCP checksum.
func tcpChecksumOK(frame []byte) bool {
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	seg := ip[ihl:total]
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(ip[12:20])
	sum += 6 + uint32(len(seg))
	add(seg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum) == 0xffff
}

func TestAckRewrite(t *testing.T) {
	pkts, err := fixtures.Packets("tcp-handshake")
	if err != nil {
		t.Fatal(err)
	}
	var plan []Planned
	for i, p := range pkts {
		plan = append(plan, Planned{Index: i, Data: p.Data})
	}
	ctx := context.Background()
	a := newAckTracker(plan)
	a.wait = 100 * time.Millisecond

	syn, err := a.sending(ctx, 0, plan[0].Data)
	if err != nil || &syn[0] != &plan[0].Data[0] {
		t.Fatalf("SYN: %v", err)
	}
	// Without the live SYN-ACK the ACK cannot be sent.
	if _, err := a.sending(ctx, 1, plan[1].Data); err == nil || !strings.Contains(err.Error(), "packet 1: no SYN-ACK toward 10.1.1.10:40010") {
		t.Fatalf("ACK without SYN-ACK: %v", err)
	}
	// pod4's SYN-ACK, reverse-NATed, as pod1 receives it: ISN 0x8000fff0.
	s0, _ := journey.SegmentOf(plan[0].Data)
	synack := frameOf(t, "10.224.1.1", "10.1.1.10", "tcp", 80, s0.Src.Port(), 61)
	tcp := synack[34:]
	binary.BigEndian.PutUint32(tcp[4:8], 0x8000fff0)
	tcp[13] = 0x12
	go func() {
		time.Sleep(20 * time.Millisecond)
		a.observe(synack)
	}()
	for i := 1; i < len(plan); i++ {
		before, _ := journey.SegmentOf(plan[i].Data)
		got, err := a.sending(ctx, i, plan[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := journey.SegmentOf(got)
		if want := before.Ack + 0x8000fff0; after.Ack != want {
			t.Errorf("packet %d: ack %#x → %#x; want %#x", i, before.Ack, after.Ack, want)
		}
		if !tcpChecksumOK(got) {
			t.Errorf("packet %d: bad TCP checksum after the rewrite", i)
		}
		if string(got[:after.Offset+8]) != string(plan[i].Data[:after.Offset+8]) || string(got[after.Offset+12:after.Offset+16]) != string(plan[i].Data[after.Offset+12:after.Offset+16]) {
			t.Errorf("packet %d: bytes other than ack and checksum changed", i)
		}
	}
	if !tcpChecksumOK(plan[1].Data) {
		t.Fatal("the fixture's own checksum does not verify: the check is wrong")
	}
}
