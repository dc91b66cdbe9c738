package replayreport

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/hoplab/hoplab/internal/journey"
)

// Sighting is a frame observed at one hop during a replay: the observation's
// decoded hop and the frame's bytes.
type Sighting struct {
	// Hop is the hop as journey.NewObservation decoded it (verdict and drop
	// reason included).
	Hop journey.Hop
	// Time is when it was seen.
	Time time.Time
	// Frame is the Ethernet frame (possibly only its first bytes).
	Frame []byte
	// OrigLen is the frame's full length (0: len(Frame)).
	OrigLen int
}

// HopFrame is the frame of one hop of one packet's journey.
type HopFrame struct {
	// Packet and Hop index the journey and the hop in it.
	Packet, Hop int
	// Time is when the hop saw the frame.
	Time time.Time
	// Frame is the frame; OrigLen its length on the wire.
	Frame   []byte
	OrigLen int
	// Rebuilt is true when no sighting carried the frame and it was rebuilt
	// from the injected packet and the hop's fields.
	Rebuilt bool
}

// Frames pairs every hop of the report with its frame: the sighting whose
// decoded hop equals it, else a frame rebuilt from the injected packet
// (injected maps a packet's index to the frame as injected; a packet
// without one gets no frames). base times rebuilt frames (hop i of packet
// k at base + k s + i ms).
func Frames(rep journey.Report, injected map[int][]byte, sightings []Sighting, base time.Time) []HopFrame {
	used := make([]bool, len(sightings))
	var out []HopFrame
	for k, p := range rep.Packets {
		for i, h := range p.Hops {
			hf := HopFrame{Packet: k, Hop: i}
			for j, s := range sightings {
				if !used[j] && sameHop(s.Hop, h) {
					used[j] = true
					hf.Time, hf.Frame, hf.OrigLen = s.Time, s.Frame, s.OrigLen
					break
				}
			}
			if hf.Frame == nil {
				orig, ok := injected[p.Index]
				if !ok {
					continue
				}
				fr, err := Rebuild(orig, h)
				if err != nil {
					continue
				}
				hf.Frame, hf.Rebuilt = fr, true
				hf.Time = base.Add(time.Duration(k)*time.Second + time.Duration(i)*time.Millisecond)
			}
			if hf.OrigLen < len(hf.Frame) {
				hf.OrigLen = len(hf.Frame)
			}
			out = append(out, hf)
		}
	}
	return out
}

// sameHop compares everything a frame determines, plus where it was seen.
func sameHop(a, b journey.Hop) bool {
	return a.Node == b.Node && a.Point == b.Point && a.Device == b.Device &&
		a.EthSrc == b.EthSrc && a.EthDst == b.EthDst && a.IPSrc == b.IPSrc && a.IPDst == b.IPDst &&
		a.TTL == b.TTL && a.Proto == b.Proto && a.Sport == b.Sport && a.Dport == b.Dport
}

// Rebuild applies a hop's header fields (MACs, addresses, TTL, ports; zero
// fields are left as they are) to a copy of frame, an Ethernet frame
// carrying IPv4, and fixes the IPv4 and L4 checksums.
func Rebuild(frame []byte, h journey.Hop) ([]byte, error) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if eth == nil || ip == nil {
		return nil, fmt.Errorf("rebuild: not an IPv4 frame")
	}
	if m, err := net.ParseMAC(h.EthSrc); err == nil {
		eth.SrcMAC = m
	}
	if m, err := net.ParseMAC(h.EthDst); err == nil {
		eth.DstMAC = m
	}
	if a, err := netip.ParseAddr(h.IPSrc); err == nil && a.Is4() {
		ip.SrcIP = a.AsSlice()
	}
	if a, err := netip.ParseAddr(h.IPDst); err == nil && a.Is4() {
		ip.DstIP = a.AsSlice()
	}
	if h.TTL != 0 {
		ip.TTL = h.TTL
	}
	ls := []gopacket.SerializableLayer{eth, ip}
	switch l := pkt.TransportLayer().(type) {
	case *layers.TCP:
		setPorts(&l.SrcPort, &l.DstPort, h)
		_ = l.SetNetworkLayerForChecksum(ip)
		ls = append(ls, l, gopacket.Payload(l.Payload))
	case *layers.UDP:
		setPorts(&l.SrcPort, &l.DstPort, h)
		_ = l.SetNetworkLayerForChecksum(ip)
		ls = append(ls, l, gopacket.Payload(l.Payload))
	default:
		ls = append(ls, gopacket.Payload(ip.Payload))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	return buf.Bytes(), nil
}

func setPorts[P ~uint16](src, dst *P, h journey.Hop) {
	if h.Sport != 0 {
		*src = P(h.Sport)
	}
	if h.Dport != 0 {
		*dst = P(h.Dport)
	}
}

// HopFile is one per-hop capture WritePcaps wrote.
type HopFile struct {
	// Name is the file's base name; Path its full path.
	Name, Path string
	// Node, Point and Device identify the hop.
	Node   string
	Point  journey.Point
	Device string
	// Packets counts the frames in the file; Rebuilt how many of them were
	// rebuilt rather than captured.
	Packets, Rebuilt int
}

// WritePcaps writes one pcapng file per hop into dir (created if needed)
// and returns them in path order (by the first journey that crosses each
// hop).
func WritePcaps(dir string, rep journey.Report, frames []HopFrame) ([]HopFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write pcaps: %w", err)
	}
	type key struct {
		node   string
		point  journey.Point
		device string
	}
	var order []key
	groups := map[key][]HopFrame{}
	for _, f := range frames {
		h := rep.Packets[f.Packet].Hops[f.Hop]
		k := key{h.Node, h.Point, h.Device}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], f)
	}
	var out []HopFile
	for i, k := range order {
		name := fmt.Sprintf("%02d-%s.pcapng", i, fileSafe(k.node+"-"+string(k.point)+"-"+k.device))
		hf := HopFile{Name: name, Path: filepath.Join(dir, name), Node: k.node, Point: k.point, Device: k.device}
		var buf bytes.Buffer
		intf := pcapgo.NgInterface{Name: k.node + ":" + dashIfEmpty(k.device), LinkType: layers.LinkTypeEthernet,
			Description: fmt.Sprintf("hoplab hop %s %s %s", k.node, k.point, dashIfEmpty(k.device)), SnapLength: 0}
		w, err := pcapgo.NewNgWriterInterface(&buf, intf, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "hoplab replay"}})
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		for _, f := range groups[k] {
			ci := gopacket.CaptureInfo{Timestamp: f.Time, CaptureLength: len(f.Frame), Length: f.OrigLen}
			if err := w.WritePacket(ci, f.Frame); err != nil {
				return nil, fmt.Errorf("write %s: %w", name, err)
			}
			hf.Packets++
			if f.Rebuilt {
				hf.Rebuilt++
			}
		}
		if err := w.Flush(); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.WriteFile(hf.Path, buf.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("write pcaps: %w", err)
		}
		out = append(out, hf)
	}
	return out, nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileSafe(s string) string {
	return unsafeChars.ReplaceAllString(s, "_")
}
