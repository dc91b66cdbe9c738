package capture

import (
	"errors"
	"testing"
)

// The exact refusal of checkHeaders where two checks could give the same
// sentinel: the message says which check fired (too short for an IPv4
// header, options missing, datagram shorter than its L4 header, or cut by
// the snapshot length), and the flags say what was seen.
func TestCheckHeadersMessages(t *testing.T) {
	ihl4 := ipv4(5, 20, 99, 0, nil)
	ihl4[0] = 0x44 // an IHL of 16 must not be looked at in 19 bytes
	for _, tc := range []struct {
		name    string
		frame   []byte
		origLen int // 0: the frame's length
		want    error
		msg     string
		flags   Flags
	}{
		{"Ethernet header only", frameOf(0x0800, nil), 0, ErrBadHeader,
			"malformed header: IPv4 header needs 20 bytes, frame has 0", 0},
		{"19 bytes, IHL 4", frameOf(0x0800, ihl4[:19]), 0, ErrBadHeader,
			"malformed header: IPv4 header needs 20 bytes, frame has 19", 0},
		{"IHL 6, 22 bytes", frameOf(0x0800, ipv4(6, 24, 99, 0, nil)[:22]), 0, ErrBadHeader,
			"malformed header: IPv4 header needs 24 bytes, frame has 22", 0},
		{"IHL 6, 22 bytes cut by snaplen", frameOf(0x0800, ipv4(6, 24, 99, 0, nil)[:22]), 100, ErrHeadersCut,
			"headers cut by snaplen: IPv4 header has 22 of 24 bytes (frame 36 of 100 bytes captured)", Truncated},
		{"UDP datagram of 4 bytes", frameOf(0x0800, ipv4(5, 24, 17, 0, make([]byte, 4))), 0, ErrBadHeader,
			"malformed header: UDP header needs 8 bytes, IP payload has 4", 0},
		// The snaplen cut the frame after the datagram's end (its Ethernet
		// padding): the datagram itself is too short, whatever was cut.
		{"UDP datagram of 4 bytes, padding cut", frameOf(0x0800, ipv4(5, 24, 17, 0, make([]byte, 4))), 60, ErrBadHeader,
			"malformed header: UDP header needs 8 bytes, IP payload has 4", Truncated},
		{"UDP header cut by snaplen", frameOf(0x0800, ipv4(5, 40, 17, 0, make([]byte, 4))), 60, ErrHeadersCut,
			"headers cut by snaplen: UDP header has 4 of 8 bytes (frame 38 of 60 bytes captured)", Truncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Packet{Data: tc.frame, OrigLen: tc.origLen}
			if p.OrigLen == 0 {
				p.OrigLen = len(tc.frame)
			}
			err := checkHeaders(&p)
			if !errors.Is(err, tc.want) || err.Error() != tc.msg {
				t.Errorf("error %v, want %q", err, tc.msg)
			}
			if p.Flags != tc.flags {
				t.Errorf("flags %v, want %v", p.Flags, tc.flags)
			}
		})
	}
}
